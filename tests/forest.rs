use latmove::model::forest::{
    Contamination, ForestError, IsolationForestParams, Node, Tree, average_path_length,
    contamination_threshold,
};
use ndarray::{Array2, array};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn c_of_n_matches_the_formula() {
    assert_eq!(average_path_length(0), 0.0);
    assert_eq!(average_path_length(1), 0.0);
    assert_eq!(average_path_length(2), 1.0);
    // Reference values: 2 (ln(n-1) + gamma) - 2 (n-1)/n, computed in Python.
    assert!(close(average_path_length(3), 1.207392357589623));
    assert!(close(average_path_length(5), 2.327020052042847));
    assert!(close(average_path_length(256), 10.244770920119917));
}

#[test]
fn path_length_adds_the_leaf_correction() {
    let tree = Tree {
        nodes: vec![
            Node::Split {
                feature: 0,
                value: 0.5,
                left: 1,
                right: 2,
                lo: 0.0,
                hi: 1.0,
            },
            Node::Leaf { depth: 1, size: 1 },
            Node::Leaf { depth: 1, size: 5 },
        ],
    };
    assert_eq!(tree.path_length(array![0.2].view()), 1.0);
    assert!(close(
        tree.path_length(array![0.9].view()),
        1.0 + average_path_length(5)
    ));
    // A value equal to the split goes left (x <= split).
    assert_eq!(tree.path_length(array![0.5].view()), 1.0);
    // Range-aware: inside [lo, hi] the same; beyond hi, 3.0 would have been
    // cut off at the root with probability (3 - 1) / (3 - 0) = 2/3.
    assert!(close(
        tree.expected_path_length(array![0.9].view()),
        tree.path_length(array![0.9].view())
    ));
    let expected = 2.0 / 3.0 * 1.0 + 1.0 / 3.0 * (1.0 + average_path_length(5));
    assert!(close(
        tree.expected_path_length(array![3.0].view()),
        expected
    ));
    // Below lo: (0 - (-1)) / (1 - (-1)) = 1/2.
    let expected = 0.5 * 1.0 + 0.5 * 1.0;
    assert!(close(
        tree.expected_path_length(array![-1.0].view()),
        expected
    ));
}

#[test]
fn range_aware_scoring_lifts_points_beyond_the_training_range() {
    // Benign-only training: the probe lies beyond every training value.
    let x = cluster_with_outlier()
        .slice(ndarray::s![..200, ..])
        .to_owned();
    let strict = IsolationForestParams {
        range_aware: false,
        ..Default::default()
    }
    .fit(x.view())
    .unwrap();
    let aware = IsolationForestParams::default().fit(x.view()).unwrap();
    let probe = array![[50.0, 50.0]];
    let bulk_max = strict
        .score(x.view())
        .unwrap()
        .into_iter()
        .fold(f64::MIN, f64::max);
    let s_strict = strict.score(probe.view()).unwrap()[0];
    let s_aware = aware.score(probe.view()).unwrap()[0];
    // scikit-learn's paths cannot put the probe above the most extreme
    // training rows by much; range-aware paths isolate it at once.
    assert!(s_strict < bulk_max + 0.1, "{s_strict} vs {bulk_max}");
    assert!(s_aware > 0.8, "{s_aware}");
    // In-range rows score the same either way.
    let a = aware.score(x.view()).unwrap();
    let b = strict.score(x.view()).unwrap();
    assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-12));
}

/// 200 points in a tight 2-D cluster plus one far away.
fn cluster_with_outlier() -> Array2<f64> {
    let mut x = Array2::zeros((201, 2));
    for i in 0..200 {
        x[[i, 0]] = (i % 20) as f64 * 0.01;
        x[[i, 1]] = (i / 20) as f64 * 0.01;
    }
    x[[200, 0]] = 5.0;
    x[[200, 1]] = 5.0;
    x
}

#[test]
fn trees_respect_subsample_and_depth_limit() {
    let x = cluster_with_outlier();
    let params = IsolationForestParams {
        max_samples: 64,
        ..Default::default()
    };
    let f = params.fit(x.view()).unwrap();
    assert_eq!(f.trees.len(), 100);
    assert_eq!(f.psi, 64);
    for t in &f.trees {
        let mut total = 0;
        for n in &t.nodes {
            if let Node::Leaf { depth, size } = n {
                assert!(*depth <= 6, "depth limit ceil(log2 64) = 6");
                total += size;
            }
        }
        assert_eq!(total, 64, "every subsampled row ends in exactly one leaf");
    }
}

#[test]
fn scores_are_in_unit_interval_and_outlier_scores_highest() {
    let x = cluster_with_outlier();
    let f = IsolationForestParams::default().fit(x.view()).unwrap();
    let s = f.score(x.view()).unwrap();
    assert!(s.iter().all(|v| *v > 0.0 && *v < 1.0));
    let bulk_max = s[..200].iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        s[200] > bulk_max,
        "outlier {} vs bulk max {}",
        s[200],
        bulk_max
    );
    assert!(s[200] > 0.6);
    // A point never seen in training, far away, also scores high.
    let probe = f.score(array![[10.0, -3.0]].view()).unwrap();
    assert!(probe[0] > bulk_max);
}

#[test]
fn same_seed_same_scores_other_seed_other_scores() {
    let x = cluster_with_outlier();
    let p = IsolationForestParams::default();
    let a = p.fit(x.view()).unwrap().score(x.view()).unwrap();
    let b = p.fit(x.view()).unwrap().score(x.view()).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
    let c = IsolationForestParams { seed: 7, ..p }
        .fit(x.view())
        .unwrap()
        .score(x.view())
        .unwrap();
    assert_ne!(bits(&a), bits(&c));
}

#[test]
fn contamination_flags_at_most_that_share_of_the_training_rows() {
    let x = cluster_with_outlier();
    let p = IsolationForestParams {
        contamination: Contamination::Fraction(0.1),
        ..Default::default()
    };
    let f = p.fit(x.view()).unwrap();
    let s = f.score(x.view()).unwrap();
    let mut sorted = s.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // floor(0.1 * 201) = 20: the threshold is the 21st highest score.
    assert_eq!(f.threshold, sorted[20]);
    let flagged = s.iter().filter(|v| **v > f.threshold).count();
    assert_eq!(flagged, 20, "10% of 201, rounded down");
    assert_eq!(contamination_threshold(&[0.3, 0.9, 0.5], 0.2), 0.9);
    assert_eq!(contamination_threshold(&[0.3, 0.9, 0.5], 0.34), 0.5);
    assert!(contamination_threshold(&[], 0.1).is_nan());
    let auto = IsolationForestParams {
        contamination: Contamination::Auto,
        ..Default::default()
    };
    assert_eq!(auto.fit(x.view()).unwrap().threshold, 0.5);
}

#[test]
fn constant_data_gives_single_leaf_trees() {
    let x = Array2::from_elem((10, 3), 1.0);
    let f = IsolationForestParams::default().fit(x.view()).unwrap();
    assert!(f.trees.iter().all(|t| t.nodes.len() == 1));
    let s = f.score(x.view()).unwrap();
    // h = 0 + c(10), so s = 2^-1 = 0.5 exactly.
    assert!(s.iter().all(|v| close(*v, 0.5)));
}

#[test]
fn parameters_are_validated_with_typed_errors() {
    let x = cluster_with_outlier();
    let zero = IsolationForestParams {
        n_trees: 0,
        ..Default::default()
    };
    assert_eq!(zero.fit(x.view()).unwrap_err(), ForestError::ZeroTrees);
    let zero_s = IsolationForestParams {
        max_samples: 0,
        ..Default::default()
    };
    assert_eq!(zero_s.fit(x.view()).unwrap_err(), ForestError::ZeroSamples);
    for bad in ["0", "0.6", "-0.1", "abc", "NaN"] {
        assert!(
            matches!(
                bad.parse::<Contamination>(),
                Err(ForestError::BadContamination(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        "auto".parse::<Contamination>().unwrap(),
        Contamination::Auto
    );
    assert_eq!(
        "0.5".parse::<Contamination>().unwrap(),
        Contamination::Fraction(0.5)
    );
    let one = Array2::zeros((1, 2));
    assert_eq!(
        IsolationForestParams::default()
            .fit(one.view())
            .unwrap_err(),
        ForestError::TooFewTrainingRows(1)
    );
    let mut nan = Array2::zeros((5, 2));
    nan[[3, 1]] = f64::NAN;
    assert_eq!(
        IsolationForestParams::default()
            .fit(nan.view())
            .unwrap_err(),
        ForestError::NonFinite { row: 3, column: 1 }
    );
    let f = IsolationForestParams::default().fit(x.view()).unwrap();
    assert!(matches!(
        f.score(Array2::zeros((2, 3)).view()),
        Err(ForestError::FeatureCountMismatch { .. })
    ));
}

#[test]
fn thread_count_does_not_change_trees_or_scores() {
    let x = cluster_with_outlier();
    let p = IsolationForestParams::default();
    let one = p.fit_threads(x.view(), 1).unwrap();
    let many = p.fit_threads(x.view(), 3).unwrap();
    assert_eq!(one, many, "same trees, same threshold");
    let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(one.score_threads(x.view(), 1).unwrap()),
        bits(many.score_threads(x.view(), 4).unwrap())
    );
}

#[test]
fn fitting_and_scoring_chosen_rows_equals_copying_them_out() {
    // Rows picked out of order from a larger matrix (with a non-finite
    // value in a row not picked): the same forest and the same scores as
    // on the selected copy, and a bad value reported at its position among
    // the picked rows.
    let x = cluster_with_outlier();
    let mut big = Array2::from_elem((x.nrows() * 2, x.ncols()), f64::NAN);
    for (i, row) in x.rows().into_iter().enumerate() {
        big.row_mut(2 * i + 1).assign(&row);
    }
    let rows: Vec<usize> = (0..x.nrows()).rev().map(|i| 2 * i + 1).collect();
    let copy = big.select(ndarray::Axis(0), &rows);
    let p = IsolationForestParams::default();
    let picked = p.fit_rows(big.view(), &rows, 2).unwrap();
    let copied = p.fit_threads(copy.view(), 2).unwrap();
    assert_eq!(picked, copied);
    let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(picked.score_rows(big.view(), &rows[3..], 2).unwrap()),
        bits(
            copied
                .score_threads(copy.slice(ndarray::s![3.., ..]), 1)
                .unwrap()
        )
    );
    let with_nan = [rows[0], rows[1], 4, rows[2]];
    assert_eq!(
        picked.score_rows(big.view(), &with_nan, 1).unwrap_err(),
        ForestError::NonFinite { row: 2, column: 0 }
    );
}

#[test]
fn a_forest_grown_in_pieces_is_the_one_fit_rows_grows() {
    // Trees grown in uneven ranges, out of order, then put in order: the
    // same forest as growing it at once (with `auto` contamination, whose
    // threshold is not computed from the training rows).
    let x = cluster_with_outlier();
    let rows: Vec<usize> = (0..x.nrows()).rev().step_by(2).collect();
    let p = IsolationForestParams {
        contamination: Contamination::Auto,
        ..Default::default()
    };
    let plan = p.plan_rows(x.view(), &rows).unwrap();
    let mut pieces = [70..100, 0..1, 1..70].map(|r| (r.start, plan.grow_trees(r)));
    pieces.sort_by_key(|(start, _)| *start);
    let trees = pieces.into_iter().flat_map(|(_, t)| t).collect();
    assert_eq!(plan.forest(trees), p.fit_rows(x.view(), &rows, 2).unwrap());
    // The plan checks what fitting checks.
    let mut bad = x.clone();
    bad[[rows[3], 1]] = f64::INFINITY;
    assert_eq!(
        p.plan_rows(bad.view(), &rows).err(),
        Some(ForestError::NonFinite { row: 3, column: 1 })
    );
}

#[test]
fn one_family_per_feature_is_the_uniform_choice_draw_for_draw() {
    let x = cluster_with_outlier();
    let uniform = IsolationForestParams::default();
    let singletons = IsolationForestParams {
        feature_families: (0..x.ncols() as u32).collect(),
        ..Default::default()
    };
    let a = uniform.fit(x.view()).unwrap().score(x.view()).unwrap();
    let b = singletons.fit(x.view()).unwrap().score(x.view()).unwrap();
    assert_eq!(a, b);
    let wrong = IsolationForestParams {
        feature_families: vec![0],
        ..Default::default()
    };
    assert!(matches!(
        wrong.fit(x.view()),
        Err(ForestError::FeatureCountMismatch { .. })
    ));
}

#[test]
fn family_choice_reaches_a_signal_that_many_related_features_would_drown() {
    // Nine related features in one family, one feature on its own; the
    // point to score is ordinary on the nine and far out on the tenth.
    let n = 600;
    let mut x = Array2::zeros((n, 10));
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..n {
        for j in 0..10 {
            x[[i, j]] = next();
        }
    }
    let mut probe = Array2::from_elem((1, 10), 0.5);
    probe[[0, 9]] = 4.0;
    let uniform = IsolationForestParams::default();
    let families = IsolationForestParams {
        feature_families: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ..Default::default()
    };
    let su = uniform.fit(x.view()).unwrap().score(probe.view()).unwrap()[0];
    let sf = families.fit(x.view()).unwrap().score(probe.view()).unwrap()[0];
    assert!(
        sf > su + 0.1,
        "family choice should isolate it sooner: {sf} vs {su}"
    );
}

#[test]
fn batch_scoring_equals_the_per_tree_path_lengths_bit_for_bit() {
    // Training data on [0, 1) in 3 features; rows to score inside and far
    // outside the range, with both path-length rules.
    let mut x = Array2::zeros((300, 3));
    for i in 0..300 {
        for j in 0..3 {
            x[[i, j]] = ((i * (7 + j) + j * 13) % 97) as f64 / 97.0;
        }
    }
    let mut probe = x.slice(ndarray::s![..40, ..]).to_owned();
    probe[[0, 0]] = 25.0;
    probe[[1, 1]] = -3.0;
    probe[[2, 2]] = 1.0;
    // 5,000 training rows and psi 8,192 grow trees deeper than the vector
    // walks take (12): those rows are scored node by node.
    let mut deep = Array2::zeros((5000, 3));
    for i in 0..5000 {
        for j in 0..3 {
            deep[[i, j]] = ((i * (7 + j) + j * 13) % 4999) as f64 / 4999.0;
        }
    }
    for (x, max_samples) in [(&x, 256), (&deep, 8192)] {
        for range_aware in [true, false] {
            let p = IsolationForestParams {
                range_aware,
                max_samples,
                n_trees: if max_samples > 256 { 10 } else { 100 },
                ..Default::default()
            };
            let f = p.fit(x.view()).unwrap();
            let c = average_path_length(f.psi);
            let batch = f.score_threads(probe.view(), 2).unwrap();
            // A column-major copy takes the non-contiguous row path.
            let fortran = probe.t().as_standard_layout().t().to_owned();
            let strided = f.score_threads(fortran.view(), 1).unwrap();
            for (i, row) in probe.rows().into_iter().enumerate() {
                let one = 2f64.powf(-f.mean_path_length(row) / c);
                assert_eq!(batch[i].to_bits(), one.to_bits(), "row {i}");
                assert_eq!(strided[i].to_bits(), one.to_bits(), "row {i}");
            }
        }
    }
}

#[test]
fn a_malformed_tree_is_an_error_not_a_crash() {
    // Trees as a hand-edited model file could hold them.
    let mut x = Array2::zeros((100, 2));
    for i in 0..100 {
        x[[i, 0]] = i as f64;
        x[[i, 1]] = (i % 7) as f64;
    }
    let good = IsolationForestParams::default().fit(x.view()).unwrap();
    let split = good.trees[3]
        .nodes
        .iter()
        .position(|n| matches!(n, Node::Split { .. }))
        .unwrap();
    type Edit = fn(&mut Node);
    let edits: [(&str, Edit); 3] = [
        ("feature 9 of 2", |n| {
            if let Node::Split { feature, .. } = n {
                *feature = 9;
            }
        }),
        ("child 0", |n| {
            if let Node::Split { left, .. } = n {
                *left = 0;
            }
        }),
        ("outside its range", |n| {
            if let Node::Split { value, hi, .. } = n {
                *value = *hi + 1.0;
            }
        }),
    ];
    for (why, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad.trees[3].nodes[split]);
        let err = bad.score(x.view()).unwrap_err();
        assert!(
            matches!(err, ForestError::MalformedTree { tree: 3, .. }),
            "{why}: {err}"
        );
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn each_split_records_the_range_of_the_training_rows_that_reach_it() {
    // With psi = n every row is in every tree's sample, so the rows that
    // reach a node can be recomputed by following the splits from the root.
    let n = 200;
    let mut x = Array2::zeros((n, 4));
    for i in 0..n {
        x[[i, 0]] = (i % 17) as f64;
        x[[i, 1]] = ((i * 7) % 23) as f64 * 0.5;
        x[[i, 2]] = if i % 5 == 0 { 1.0 } else { 0.0 };
        x[[i, 3]] = 3.0; // constant: never split on
    }
    for families in [vec![], vec![0, 0, 1, 2]] {
        let p = IsolationForestParams {
            max_samples: n,
            feature_families: families,
            ..Default::default()
        };
        let f = p.fit(x.view()).unwrap();
        for tree in &f.trees {
            let mut stack = vec![(0usize, (0..n).collect::<Vec<usize>>())];
            while let Some((node, rows)) = stack.pop() {
                match tree.nodes[node] {
                    Node::Split {
                        feature,
                        value,
                        left,
                        right,
                        lo,
                        hi,
                    } => {
                        let j = feature as usize;
                        assert_ne!(j, 3, "split on a constant feature");
                        let min = rows
                            .iter()
                            .map(|&r| x[[r, j]])
                            .fold(f64::INFINITY, f64::min);
                        let max = rows
                            .iter()
                            .map(|&r| x[[r, j]])
                            .fold(f64::NEG_INFINITY, f64::max);
                        assert_eq!((lo, hi), (min, max));
                        assert!(lo <= value && value < hi);
                        let (l, r): (Vec<usize>, Vec<usize>) =
                            rows.iter().partition(|&&r| x[[r, j]] <= value);
                        stack.push((left as usize, l));
                        stack.push((right as usize, r));
                    }
                    Node::Leaf { size, .. } => assert_eq!(size as usize, rows.len()),
                }
            }
        }
    }
}

#[test]
fn median_by_selection_equals_the_sorted_quantile_bit_for_bit() {
    let mut seed = 7u64;
    for n in 0..60usize {
        for _ in 0..20 {
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Few distinct values (ties), signed zeros, large spread.
                    match (seed >> 60) % 4 {
                        0 => 0.0,
                        1 => -0.0,
                        2 => ((seed >> 40) % 5) as f64,
                        _ => (seed >> 11) as f64 / 3.0 - 1e15,
                    }
                })
                .collect();
            let want = latmove::util::stats::quantile(&v, 0.5);
            let got = latmove::util::stats::median_in_place(&mut v.clone());
            assert_eq!(want.to_bits(), got.to_bits(), "{v:?}");
        }
    }
}
