//! Host-level evaluation against labels.
//!
//! * Confusion counts from the flag decisions.
//! * ROC-AUC from the scores, as the Mann-Whitney probability that a random
//!   attack host outscores a random benign host (ties count one half).
//! * Average precision as scikit-learn computes it:
//!   `AP = sum_n (R_n - R_(n-1)) P_n` over the distinct score thresholds,
//!   highest first.

use serde::Serialize;

/// Evaluation of one run. Ratios are `None` when undefined (0/0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub hosts: usize,
    pub attack_hosts: usize,
    pub benign_hosts: usize,
    pub flagged_hosts: usize,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
    pub recall: Option<f64>,
    pub precision: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    /// Best recall reachable by a score threshold that flags at most 1% /
    /// 5% of the benign hosts.
    pub recall_at_1pct_fpr: Option<f64>,
    pub recall_at_5pct_fpr: Option<f64>,
    /// Per attack family (a host's most frequent attack label): attack
    /// hosts, and how many were flagged.
    pub families: Vec<FamilyRecall>,
}

/// Recall for one attack family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyRecall {
    pub family: String,
    pub hosts: usize,
    pub flagged: usize,
}

/// Best recall with at most `max_fpr` of the negatives scored at or above
/// the threshold.
pub(crate) fn recall_at_fpr(truth: &[bool], scores: &[f64], max_fpr: f64) -> Option<f64> {
    let pos = truth.iter().filter(|t| **t).count();
    let neg = truth.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = 0.0;
    for g in tie_groups(scores, true) {
        tp += g.iter().filter(|&&k| truth[k]).count();
        fp += g.iter().filter(|&&k| !truth[k]).count();
        if fp as f64 / neg as f64 <= max_fpr {
            best = tp as f64 / pos as f64;
        } else {
            break;
        }
    }
    Some(best)
}

/// Adds per-family recall: `families[i]` is host i's family (attack hosts).
pub(crate) fn with_families(
    mut m: Metrics,
    families: &[Option<String>],
    flagged: &[bool],
) -> Metrics {
    let mut out: Vec<FamilyRecall> = Vec::new();
    for (f, fl) in families.iter().zip(flagged) {
        if let Some(f) = f {
            match out.iter_mut().find(|r| &r.family == f) {
                Some(r) => {
                    r.hosts += 1;
                    r.flagged += usize::from(*fl);
                }
                None => out.push(FamilyRecall {
                    family: f.clone(),
                    hosts: 1,
                    flagged: usize::from(*fl),
                }),
            }
        }
    }
    out.sort_by(|a, b| a.family.cmp(&b.family));
    m.families = out;
    m
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Computes metrics from per-host (is_attack, flagged, score).
pub(crate) fn evaluate(truth: &[bool], flagged: &[bool], scores: &[f64]) -> Metrics {
    assert!(truth.len() == flagged.len() && truth.len() == scores.len());
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    for (&t, &f) in truth.iter().zip(flagged) {
        match (t, f) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    Metrics {
        hosts: truth.len(),
        attack_hosts: tp + fn_,
        benign_hosts: fp + tn,
        flagged_hosts: tp + fp,
        tp,
        fp,
        fn_,
        tn,
        recall: ratio(tp, tp + fn_),
        precision: ratio(tp, tp + fp),
        false_positive_rate: ratio(fp, fp + tn),
        roc_auc: roc_auc(truth, scores),
        average_precision: average_precision(truth, scores),
        recall_at_1pct_fpr: recall_at_fpr(truth, scores, 0.01),
        recall_at_5pct_fpr: recall_at_fpr(truth, scores, 0.05),
        families: Vec::new(),
    }
}

/// Indices sorted by score (ascending, or descending when `desc`), cut into
/// groups of equal scores: each group is one threshold.
fn tie_groups(scores: &[f64], desc: bool) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        let o = scores[a].total_cmp(&scores[b]);
        if desc { o.reverse() } else { o }
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for k in idx {
        match groups.last_mut() {
            Some(g) if scores[g[0]] == scores[k] => g.push(k),
            _ => groups.push(vec![k]),
        }
    }
    groups
}

/// Area under the ROC curve; `None` without both classes.
pub(crate) fn roc_auc(truth: &[bool], scores: &[f64]) -> Option<f64> {
    let pos = truth.iter().filter(|t| **t).count();
    let neg = truth.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    // Rank-sum with average ranks for ties.
    let mut rank_sum_pos = 0.0;
    let mut seen = 0usize;
    for g in tie_groups(scores, false) {
        let avg_rank = seen as f64 + (g.len() as f64 + 1.0) / 2.0;
        rank_sum_pos += avg_rank * g.iter().filter(|&&k| truth[k]).count() as f64;
        seen += g.len();
    }
    let u = rank_sum_pos - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Average precision (scikit-learn's definition); `None` without attacks.
pub(crate) fn average_precision(truth: &[bool], scores: &[f64]) -> Option<f64> {
    let pos = truth.iter().filter(|t| **t).count();
    if pos == 0 {
        return None;
    }
    let (mut tp, mut seen) = (0usize, 0usize);
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for g in tie_groups(scores, true) {
        tp += g.iter().filter(|&&k| truth[k]).count();
        seen += g.len();
        let recall = tp as f64 / pos as f64;
        ap += (recall - prev_recall) * (tp as f64 / seen as f64);
        prev_recall = recall;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Values checked against scikit-learn 1.9.1:
        // roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75
        // average_precision_score(same) = 0.8333...
        let t = [false, false, true, true];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!((roc_auc(&t, &s).unwrap() - 0.75).abs() < 1e-12);
        assert!((average_precision(&t, &s).unwrap() - 0.833_333_333_333_333_4).abs() < 1e-12);
        let m = evaluate(&t, &[false, true, false, true], &s);
        assert_eq!((m.tp, m.fp, m.fn_, m.tn), (1, 1, 1, 1));
        assert_eq!(m.recall, Some(0.5));
        assert_eq!(m.false_positive_rate, Some(0.5));
        // Thresholds: 0.8 gives recall 0.5 at FPR 0; 0.4 gives 0.5 at 0.5;
        // 0.35 gives 1.0 at 0.5.
        assert_eq!(recall_at_fpr(&t, &s, 0.01), Some(0.5));
        assert_eq!(recall_at_fpr(&t, &s, 0.5), Some(1.0));
        // Ties: roc_auc_score([0,1,0,1],[0.5,0.5,0.2,0.9]) = 0.875,
        // average_precision_score(same) = 0.8333...
        let t = [false, true, false, true];
        let s = [0.5, 0.5, 0.2, 0.9];
        assert!((roc_auc(&t, &s).unwrap() - 0.875).abs() < 1e-12);
        assert!((average_precision(&t, &s).unwrap() - 0.833_333_333_333_333_4).abs() < 1e-12);
    }
}
