//! The cross-fitting stage: every training host is scored by a forest
//! grown without any of its entities, so its score is out of sample like
//! everybody else's.
//!
//! [`CrossFit::assign`] gives each training host a fold (its position in IP
//! order modulo k) and lists the jobs: the full forest (grown on every
//! training entity) scores the entities outside the training set; fold j's
//! forest, grown without fold j, scores fold j's entities.
//! [`grow_and_score`] runs the jobs side by side: the trees of every job
//! grown in tasks of ten on whichever thread is free, each forest compiled
//! for scoring, the entities scored in tasks of at most 1,024. A tree
//! depends only on its number and every entity is scored by exactly one
//! job with its trees summed in order, so nothing depends on the threads.

use anyhow::{Context, Result};
use ndarray::ArrayView2;

use crate::model::forest::{Contamination, IsolationForestParams};
use crate::model::forest::{ForestError, IsolationForest, Scorer, Tree};
use crate::util::threads::{in_tasks, task_ranges};

/// Cross-fitting parameters: `folds` of 0 or 1 scores the training hosts
/// with the forest that saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossFit {
    /// Folds over the training hosts (`--folds`).
    pub folds: usize,
}

/// One forest to grow (`fit`: its training rows) and the rows it scores.
#[derive(Debug, Clone)]
pub struct Job {
    /// Rows of the table to grow the forest on.
    pub fit: Vec<usize>,
    /// Rows it scores.
    pub score: Vec<usize>,
    /// What the forest is, for error messages.
    pub what: String,
}

/// The training hosts' folds and the jobs they make.
#[derive(Debug, Clone)]
pub struct Folds {
    /// Per host: its fold, `usize::MAX` for a host not trained on.
    fold_of: Vec<usize>,
    /// Folds in use (0: in-sample, no cross-fitting).
    k: usize,
}

impl CrossFit {
    /// Assigns folds to `train_hosts` (indices below `n_hosts`, in IP
    /// order): at most one fold per host, and no cross-fitting below two.
    pub fn assign(&self, train_hosts: &[usize], n_hosts: usize) -> Folds {
        let folds = self.folds.min(train_hosts.len());
        let cross_fitted = folds >= 2;
        let mut fold_of = vec![usize::MAX; n_hosts];
        for (pos, &h) in train_hosts.iter().enumerate() {
            fold_of[h] = if cross_fitted { pos % folds } else { 0 };
        }
        Folds {
            fold_of,
            k: if cross_fitted { folds } else { 0 },
        }
    }
}

impl Folds {
    /// Folds in use: 0 when the training hosts are scored in sample.
    pub fn used(&self) -> usize {
        self.k
    }

    /// Whether host `h` is trained on.
    pub fn is_training(&self, h: usize) -> bool {
        self.fold_of[h] != usize::MAX
    }

    /// The training rows: every entity (`host_of[e]` its host) of a
    /// training host.
    pub fn training_rows(&self, host_of: &[usize]) -> Vec<usize> {
        (0..host_of.len())
            .filter(|&e| self.is_training(host_of[e]))
            .collect()
    }

    /// The jobs over the entities (`host_of[e]` their hosts), the full
    /// forest first; `hosts` (the training hosts' count) names it.
    pub fn jobs(&self, host_of: &[usize], hosts: usize) -> Vec<Job> {
        let train = self.training_rows(host_of);
        let full = Job {
            score: if self.k >= 2 {
                (0..host_of.len())
                    .filter(|&e| !self.is_training(host_of[e]))
                    .collect()
            } else {
                (0..host_of.len()).collect()
            },
            fit: train.clone(),
            what: format!("training on {hosts} hosts"),
        };
        let folds = (0..self.k).map(|fold| {
            let (score, fit) = train
                .iter()
                .partition(|&&e| self.fold_of[host_of[e]] == fold);
            Job {
                fit,
                score,
                what: format!("training fold {} of {}", fold + 1, self.k),
            }
        });
        std::iter::once(full).chain(folds).collect()
    }
}

/// Grows every job's forest on `x` and scores each job's rows with it;
/// returns the first job's forest and every row's score (NaN for a row no
/// job scores). The forests' own thresholds are not computed (the
/// threshold comes from the hosts' scores).
pub fn grow_and_score(
    params: &IsolationForestParams,
    x: ArrayView2<'_, f64>,
    jobs: &[Job],
    threads: usize,
) -> Result<(IsolationForest, Vec<f64>)> {
    let mut forests = grow(params, x, jobs, threads)?;
    let scorers = compile(&forests, threads)?;
    let scored: Vec<(&Scorer, &[usize])> = scorers
        .iter()
        .zip(jobs)
        .map(|(s, j)| (s, j.score.as_slice()))
        .collect();
    let scores = score_jobs(x, &scored, threads)?;
    Ok((forests.swap_remove(0), scores))
}

/// Grows the first job's forest only (the same one [`grow_and_score`]
/// returns).
pub fn grow_first(
    params: &IsolationForestParams,
    x: ArrayView2<'_, f64>,
    jobs: &[Job],
    threads: usize,
) -> Result<IsolationForest> {
    Ok(grow(params, x, &jobs[..1], threads)?.swap_remove(0))
}

/// Scores the rows `rows` of `x` with `forest` (a saved model's).
pub fn score_with(
    forest: &IsolationForest,
    x: ArrayView2<'_, f64>,
    rows: &[usize],
    threads: usize,
) -> Result<Vec<f64>> {
    score_some_with(&forest.scorer()?, x, rows, threads)
}

/// `scorer`'s scores of `rows` of `x` (the other rows' are NaN).
pub fn score_some_with(
    scorer: &Scorer,
    x: ArrayView2<'_, f64>,
    rows: &[usize],
    threads: usize,
) -> Result<Vec<f64>> {
    score_jobs(x, &[(scorer, rows)], threads)
}

/// Every row of `x` scored with a compiled forest, on `threads` threads
/// (for batches scored one after another with one compilation).
pub fn score_rows_with(
    scorer: &Scorer,
    x: ArrayView2<'_, f64>,
    threads: usize,
) -> Result<Vec<f64>> {
    let rows: Vec<usize> = (0..x.nrows()).collect();
    score_some_with(scorer, x, &rows, threads)
}

/// Every job's forest, its trees grown in tasks of `TREE_TASK` on
/// whichever thread is free, so the threads finish together.
fn grow(
    params: &IsolationForestParams,
    x: ArrayView2<'_, f64>,
    jobs: &[Job],
    threads: usize,
) -> Result<Vec<IsolationForest>> {
    const TREE_TASK: usize = 10;
    let fit_params = IsolationForestParams {
        contamination: Contamination::Auto,
        ..params.clone()
    };
    // Checked (every value finite) side by side.
    let plans: Vec<_> = in_tasks(jobs.len(), threads, |j| {
        fit_params
            .plan_rows(x.view(), &jobs[j].fit)
            .with_context(|| jobs[j].what.clone())
    })
    .into_iter()
    .collect::<Result<_>>()?;
    let tasks = task_ranges((0..jobs.len()).map(|j| (j, fit_params.n_trees)), TREE_TASK);
    let grown = in_tasks(tasks.len(), threads, |t| {
        let (j, range) = &tasks[t];
        plans[*j].grow_trees(range.clone())
    });
    let mut trees_of: Vec<Vec<Tree>> = vec![Vec::new(); jobs.len()];
    for ((j, _), trees) in tasks.iter().zip(grown) {
        trees_of[*j].extend(trees);
    }
    Ok(plans
        .iter()
        .zip(trees_of)
        .map(|(plan, trees)| plan.forest(trees))
        .collect())
}

/// The forests compiled for scoring, side by side.
fn compile(forests: &[IsolationForest], threads: usize) -> Result<Vec<Scorer>> {
    in_tasks(forests.len(), threads, |j| forests[j].scorer())
        .into_iter()
        .map(|s| s.map_err(anyhow::Error::from))
        .collect()
}

/// Scores each job's rows with its scorer, in tasks of at most
/// `SCORE_TASK` rows so the threads finish together however unequal the
/// jobs are; every row's score (NaN for a row no job scores).
fn score_jobs(
    x: ArrayView2<'_, f64>,
    jobs: &[(&Scorer, &[usize])],
    threads: usize,
) -> Result<Vec<f64>> {
    const SCORE_TASK: usize = 1024;
    let tasks = task_ranges(
        jobs.iter()
            .enumerate()
            .map(|(j, (_, rows))| (j, rows.len())),
        SCORE_TASK,
    );
    let scored = in_tasks(tasks.len(), threads.max(1), |t| {
        let (j, range) = &tasks[t];
        let (scorer, rows) = jobs[*j];
        scorer
            .score_rows(x, Some(&rows[range.clone()]), 1)
            .map_err(|e| match e {
                // The position among the job's rows.
                ForestError::NonFinite { row, column } => ForestError::NonFinite {
                    row: row + range.start,
                    column,
                },
                e => e,
            })
    });
    let mut scores = vec![f64::NAN; x.nrows()];
    for ((j, range), s) in tasks.iter().zip(scored) {
        for (e, v) in jobs[*j].1[range.clone()].iter().zip(s?) {
            scores[*e] = v;
        }
    }
    Ok(scores)
}
