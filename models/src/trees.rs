//! Bagged decision trees: the second model family.
//!
//! Each tree is a linfa-trees `DecisionTree` (Gini, bounded depth) fitted on a bootstrap
//! sample of the undersampled training rows and on a random subset of the features
//! (random subspace, so the trees differ more than bootstrap alone makes them). linfa's
//! trees give no probabilities and their serde support is an optional feature, so each
//! fitted tree is walked into our own flat [`Node`] format, and every node stores the
//! smoothed failure share of that tree's bootstrap rows reaching it. Scoring does not
//! depend on linfa: the forest's probability is the mean leaf share over the trees (a
//! soft vote share), turned into log-odds so the same prior correction and Platt
//! calibration as for the logistic family apply.
//!
//! linfa prunes sibling leaves that predict the same majority class, so a tree is
//! coarser than `max_depth` allows; the shares stored per node still come from the
//! rows, not from the majority. A node's share is the tree's bootstrap failure count
//! plus two pseudo-rows at the sample's base share, over its rows plus two.
//!
//! Explanations follow the decision path (Saabas): at each split a tree credits the
//! split feature with the change of the node share from parent to child; summed over
//! the path this is exactly the leaf share minus the root share, so per feature the
//! contributions add up to the forest's probability minus its base share. Cost is one
//! more walk of each path, as cheap as scoring.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One node of a fitted tree. Leaves have `feature == None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Index of the standardised feature split on; `None` for a leaf.
    pub feature: Option<u32>,
    /// Rows with `z[feature] <= threshold` go left (unknown features are `z = 0`).
    pub threshold: f64,
    /// Index of the left child in the tree's node list.
    pub left: u32,
    /// Index of the right child.
    pub right: u32,
    /// Smoothed failure share of the tree's training rows reaching this node.
    pub value: f64,
}

/// A fitted tree; node 0 is the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes, root first; children always come after their parent.
    pub nodes: Vec<Node>,
}

impl Tree {
    fn leaf(&self, z: &[f64]) -> &Node {
        let mut n = &self.nodes[0];
        while let Some(f) = n.feature {
            let x = z.get(f as usize).copied().unwrap_or(0.0);
            let next = if x <= n.threshold { n.left } else { n.right };
            n = &self.nodes[next as usize];
        }
        n
    }
}

/// Lowest and highest share a forest reports, so its log-odds stay finite.
const SHARE_CLAMP: f64 = 1e-4;

/// The forest's mean leaf share for standardised features `z`.
pub fn forest_share(trees: &[Tree], z: &[f64]) -> f64 {
    if trees.is_empty() {
        return 0.5;
    }
    trees.iter().map(|t| t.leaf(z).value).sum::<f64>() / trees.len() as f64
}

/// The forest's log-odds, `ln(p / (1 - p))` of [`forest_share`] (before prior correction).
pub fn forest_logit(trees: &[Tree], z: &[f64]) -> f64 {
    let p = forest_share(trees, z).clamp(SHARE_CLAMP, 1.0 - SHARE_CLAMP);
    (p / (1.0 - p)).ln()
}

/// Adds each feature's decision-path contribution (in share units, averaged over the
/// trees) to `out`, which holds one value per feature, and returns the forest's log-odds
/// ([`forest_logit`], bit for bit): one walk serves the score and its explanation.
pub fn contributions(trees: &[Tree], z: &[f64], out: &mut [f64]) -> f64 {
    if trees.is_empty() {
        return forest_logit(trees, z);
    }
    let w = 1.0 / trees.len() as f64;
    // The same left-to-right sum as `forest_share` (`Iterator::sum` folds from -0.0).
    let mut sum = -0.0f64;
    for t in trees {
        let mut n = &t.nodes[0];
        while let Some(f) = n.feature {
            let x = z.get(f as usize).copied().unwrap_or(0.0);
            let next = &t.nodes[if x <= n.threshold { n.left } else { n.right } as usize];
            if let Some(o) = out.get_mut(f as usize) {
                *o += w * (next.value - n.value);
            }
            n = next;
        }
        sum += n.value;
    }
    let p = (sum / trees.len() as f64).clamp(SHARE_CLAMP, 1.0 - SHARE_CLAMP);
    (p / (1.0 - p)).ln()
}

/// Checks that every tree is well formed for `n_features` features: child indices
/// point forward inside the tree (so walks end), numbers are finite.
pub(crate) fn validate(trees: &[Tree], n_features: usize) -> std::result::Result<(), String> {
    for (ti, t) in trees.iter().enumerate() {
        if t.nodes.is_empty() {
            return Err(format!("tree {ti} has no nodes"));
        }
        for (i, n) in t.nodes.iter().enumerate() {
            if !n.value.is_finite() || !(0.0..=1.0).contains(&n.value) {
                return Err(format!("tree {ti} node {i} has an invalid value"));
            }
            if let Some(f) = n.feature {
                let ok = (f as usize) < n_features
                    && n.threshold.is_finite()
                    && [n.left, n.right]
                        .iter()
                        .all(|&c| (c as usize) > i && (c as usize) < t.nodes.len());
                if !ok {
                    return Err(format!("tree {ti} node {i} is malformed"));
                }
            }
        }
    }
    Ok(())
}

/// Hyper-parameters of the bagged trees.
pub(crate) struct ForestParams {
    pub(crate) trees: usize,
    pub(crate) max_depth: usize,
    /// Rows per tree (bootstrap, with replacement); at most the sample's size.
    pub(crate) rows_per_tree: usize,
    /// Minimum rows in a leaf.
    pub(crate) min_leaf: f32,
}

/// Fits bagged trees on standardised rows `x` with labels `y` (true = failure).
///
/// Each tree's bootstrap rows and feature subset are drawn first, in tree order, from
/// one seeded generator; the trees are then fitted on up to
/// [`std::thread::available_parallelism`] threads and returned in tree order. The
/// result does not depend on the number of threads: the same seed gives the same
/// forest on any machine.
pub(crate) fn fit_forest(
    x: ArrayView2<'_, f64>,
    y: &[bool],
    p: &ForestParams,
    seed: u64,
) -> std::result::Result<Vec<Tree>, String> {
    let (m, d) = x.dim();
    if m == 0 || d == 0 {
        return Err("no rows to fit trees on".into());
    }
    let base = y.iter().filter(|b| **b).count() as f64 / m as f64;
    let plans = plan(m, d, p, seed);
    fit_planned(x, y, p, base, &plans, crate::par::workers())
}

/// Each tree's bootstrap rows (of `m`) and sorted feature subset (a third of `d`, at
/// least 8), drawn in tree order from one generator seeded with `seed`.
fn plan(m: usize, d: usize, p: &ForestParams, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = (d / 3).max(8).min(d);
    let rows = p.rows_per_tree.clamp(1, m);
    (0..p.trees)
        .map(|_| {
            let picked: Vec<usize> = (0..rows).map(|_| rng.gen_range(0..m)).collect();
            let mut feats: Vec<usize> = rand::seq::index::sample(&mut rng, d, k).into_vec();
            feats.sort_unstable();
            (picked, feats)
        })
        .collect()
}

/// Fits the planned trees (bootstrap rows, features) on up to `workers` threads, in
/// plan order.
fn fit_planned(
    x: ArrayView2<'_, f64>,
    y: &[bool],
    p: &ForestParams,
    base: f64,
    plans: &[(Vec<usize>, Vec<usize>)],
    workers: usize,
) -> std::result::Result<Vec<Tree>, String> {
    let fit = |(picked, feats): &(Vec<usize>, Vec<usize>)| fit_tree(x, y, p, base, picked, feats);
    crate::par::map_on(plans, workers, fit)
        .into_iter()
        .collect()
}

/// Fits one tree on the bootstrap rows `picked`, splitting on the features `feats`.
fn fit_tree(
    x: ArrayView2<'_, f64>,
    y: &[bool],
    p: &ForestParams,
    base: f64,
    picked: &[usize],
    feats: &[usize],
) -> std::result::Result<Tree, String> {
    let (rows, k, d) = (picked.len(), feats.len(), x.ncols());
    let mut sub = Array2::<f64>::zeros((rows, k));
    let mut sy = Array1::<bool>::from_elem(rows, false);
    for (r, &i) in picked.iter().enumerate() {
        for (c, &f) in feats.iter().enumerate() {
            sub[[r, c]] = x[[i, f]];
        }
        sy[r] = y[i];
    }
    // linfa breaks a tie between the classes in a node (and so its pruning of
    // sibling leaves of the same majority) by hash-map order, which varies between
    // runs: weighting negatives by 1 + 2^-20 makes exact ties impossible, so the
    // same seed gives the same trees.
    let weights: Array1<f32> = sy
        .iter()
        .map(|&y| if y { 1.0 } else { 1.0 + f32::EPSILON * 8.0 })
        .collect();
    let dataset = Dataset::new(sub, sy).with_weights(weights);
    let fitted: DecisionTree<f64, bool> = DecisionTree::params()
        .max_depth(Some(p.max_depth))
        .min_weight_leaf(p.min_leaf)
        .min_weight_split(2.0 * p.min_leaf)
        .fit(&dataset)
        .map_err(|e| e.to_string())?;
    let mut tree = Tree { nodes: Vec::new() };
    convert(fitted.root_node(), feats, &mut tree.nodes);
    // Node shares from the tree's own bootstrap rows, smoothed toward the base share.
    let mut pos = vec![0.0f64; tree.nodes.len()];
    let mut cnt = vec![0.0f64; tree.nodes.len()];
    let mut row = vec![0.0; d];
    for &i in picked {
        for (f, v) in row.iter_mut().enumerate() {
            *v = x[[i, f]];
        }
        let mut at = 0usize;
        loop {
            cnt[at] += 1.0;
            if y[i] {
                pos[at] += 1.0;
            }
            let n = &tree.nodes[at];
            match n.feature {
                Some(f) => {
                    at = if row[f as usize] <= n.threshold {
                        n.left
                    } else {
                        n.right
                    } as usize
                }
                None => break,
            }
        }
    }
    for (i, n) in tree.nodes.iter_mut().enumerate() {
        n.value = (pos[i] + 2.0 * base) / (cnt[i] + 2.0);
    }
    Ok(tree)
}

/// Appends `node` and its subtree in pre-order, mapping sub-feature indices to `feats`.
fn convert(node: &TreeNode<f64, bool>, feats: &[usize], out: &mut Vec<Node>) -> u32 {
    let at = out.len();
    out.push(Node {
        feature: None,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: 0.0,
    });
    let children = node.children();
    if let (false, Some(l), Some(r)) = (node.is_leaf(), children[0], children[1]) {
        let (f, threshold, _) = node.split();
        let left = convert(l, feats, out);
        let right = convert(r, feats, out);
        out[at] = Node {
            feature: Some(feats[f] as u32),
            threshold,
            left,
            right,
            value: 0.0,
        };
    }
    at as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forest_is_the_same_on_any_number_of_threads_and_learns_a_step() {
        // Feature 0 carries the label (positive above 0.5), features 1-8 are noise.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (m, d) = (2_000, 9);
        let x = Array2::from_shape_fn((m, d), |_| rng.gen_range(0.0..1.0));
        let y: Vec<bool> = (0..m).map(|i| x[[i, 0]] > 0.5).collect();
        let p = ForestParams {
            trees: 7,
            max_depth: 4,
            rows_per_tree: 500,
            min_leaf: 5.0,
        };
        let forest = fit_forest(x.view(), &y, &p, 42).unwrap();
        assert_eq!(forest.len(), 7);
        validate(&forest, d).unwrap();
        let base = y.iter().filter(|b| **b).count() as f64 / m as f64;
        let plans = plan(m, d, &p, 42);
        for workers in [1, 2, 3, 16] {
            let again = fit_planned(x.view(), &y, &p, base, &plans, workers).unwrap();
            assert_eq!(again, forest, "{workers} threads");
        }
        let mut row = vec![0.5; d];
        row[0] = 0.9;
        let high = forest_logit(&forest, &row);
        row[0] = 0.1;
        let low = forest_logit(&forest, &row);
        assert!(high > 1.0 && low < -1.0, "high {high}, low {low}");
    }
}
