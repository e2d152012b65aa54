//! Linear ridge readouts: Gram products on the backend (f64-accurate), the solve on the host in
//! f64, the prediction back on the backend.

use crate::compute::{Backend, CancelToken, Cancelled, Tensor};
use crate::linalg::ridge_solve;

/// Solves `(G + λI) W = R` and writes `[blocks]·W` into `prediction`. `gram` is the square Gram
/// matrix of the concatenated blocks and `rhs` their product with the target, both row-major.
pub fn predict_from_gram(
    backend: &dyn Backend,
    blocks: &[&Tensor],
    gram: &[f64],
    rhs: &[f64],
    lambda: f64,
    prediction: &mut Tensor,
) -> Vec<f64> {
    let features: usize = blocks.iter().map(|b| b.cols()).sum();
    let weights = ridge_solve(gram, rhs, features, prediction.cols(), lambda);
    backend.readout(blocks, &weights, prediction);
    weights
}

/// Fits a ridge readout from `features` to `target` and writes the prediction. Cancelled, it
/// stops during the Gram products, before `prediction` is touched.
pub fn fit_ridge(
    backend: &dyn Backend,
    features: &Tensor,
    target: &Tensor,
    lambda: f64,
    prediction: &mut Tensor,
    cancel: &CancelToken,
) -> Result<Vec<f64>, Cancelled> {
    fit_ridge_on(
        backend, features, target, lambda, features, prediction, cancel,
    )
}

/// [`fit_ridge`] solved on the rows of `fitted` (the observed pixels of a mask) and applied to
/// `applied` (every pixel), which has the same columns.
pub fn fit_ridge_on(
    backend: &dyn Backend,
    fitted: &Tensor,
    target: &Tensor,
    lambda: f64,
    applied: &Tensor,
    prediction: &mut Tensor,
    cancel: &CancelToken,
) -> Result<Vec<f64>, Cancelled> {
    let gram = backend.gram_until(&[fitted], fitted, cancel)?;
    let rhs = backend.gram_until(&[fitted], target, cancel)?;
    Ok(predict_from_gram(
        backend,
        &[applied],
        &gram,
        &rhs,
        lambda,
        prediction,
    ))
}

/// `[blocks]·weights` clipped to [0, 1] and downloaded: a readout evaluated away from the
/// pixel grid (a rendering's row block).
pub fn clipped_readout(
    backend: &dyn Backend,
    blocks: &[&Tensor],
    weights: &[f64],
) -> anyhow::Result<Vec<f32>> {
    let mut out = backend.zeros(blocks[0].rows(), 3)?;
    backend.readout(blocks, weights, &mut out);
    backend.clip(&mut out, 0.0, 1.0);
    Ok(backend.download(&out))
}
