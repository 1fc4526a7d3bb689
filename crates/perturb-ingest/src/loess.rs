//! One-predictor LOESS that reproduces `skmisc.loess.loess(x, y, span, degree).fit()`
//! (`outputs.fitted_values`), i.e. netlib's dloess by Cleveland, Grosse & Shyu with
//! skmisc's defaults: `family="gaussian"` (a single fit, no robustness iterations),
//! `surface="interpolate"`, `cell=0.2`, unit weights. scanpy's
//! `highly_variable_genes(flavor="seurat_v3")` fits its mean-variance trend with exactly
//! this call (`span=0.3, degree=2`), so matching it to rounding keeps gene rankings
//! identical.
//!
//! `surface="interpolate"` does not fit a local regression at every datum. It
//!
//! 1. builds a k-d tree (here: a binary partition of the real line) over the data,
//!    bounded by the data range widened by 0.5% on each side, and splits cells at
//!    data medians until each holds at most `fc = floor(n * span * cell)` points;
//! 2. fits a weighted local polynomial at every cell boundary ("vertex"), keeping the
//!    fitted value *and* slope there;
//! 3. evaluates the surface at each datum by cubic Hermite interpolation between the
//!    two vertices of the leaf cell that contains it.
//!
//! Every rule below that changes the numbers (box margin, split position and its tie
//! rule, cell-count and tree-size limits, neighbourhood radius, weights, the
//! least-squares solve with its pseudo-inverse cut-off, the Hermite basis) follows the
//! dloess Fortran (`ehg126`, `ehg124`, `ehg129`, `ehg125`, `ehg127`, `ehg128`,
//! `lowesd`) and skmisc's C driver (`loess_`, `loess_workspace`).
//!
//! Where skmisc raises instead of returning a fit this module mostly returns an error
//! too (span outside (0, 1], span too small, zero-width neighbourhood, all weights
//! zero). Deliberate differences: dloess also emits warnings that skmisc turns into a
//! `ValueError` although the fit itself was computed, and for those this module returns
//! the fit: a rank-deficient local fit (dloess then uses the pseudo-inverse, as here),
//! a k-d tree that hit its size limit (`max(200, n)` cells; the partial tree is used,
//! as here), and the "Chernobyl" warnings of the trace/statistics approximation, which
//! does not affect fitted values and is not computed here.

use std::fmt;

/// skmisc's default `control.cell`: a cell is split while it holds more than
/// `floor(n * span * cell)` points.
const CELL: f64 = 0.2;

/// `d1mach(4)`, the machine epsilon dloess uses for its pseudo-inverse tolerance.
const MACHEP: f64 = f64::EPSILON;

#[derive(Debug, Clone, PartialEq)]
pub enum LoessError {
    /// Fewer points than a local polynomial of this degree needs (`degree + 2`),
    /// whatever the span.
    TooFewPoints { n: usize },
    /// `x` and `y` have different lengths.
    LengthMismatch { x_len: usize, y_len: usize },
    /// `x[index]` or `y[index]` is NaN or infinite.
    NonFinite { index: usize },
    /// `span` is not in `(0, 1]` (skmisc: "Span should be between 0 and 1!").
    InvalidSpan { span: f64 },
    /// Only local constant, linear and quadratic fits exist (degree 0, 1, 2).
    InvalidDegree { degree: usize },
    /// The neighbourhood `q = floor(n * span + 1e-5)` holds fewer than `needed` points
    /// (skmisc: "span is too small" / "Span too small. Fewer data values than degrees
    /// of freedom.").
    SpanTooSmall { span: f64, q: usize, needed: usize },
    /// At vertex `at`, the `q` nearest points all coincide with it (skmisc:
    /// "Zero-width neighborhood. Make span bigger").
    ZeroWidthNeighbourhood { at: f64 },
    /// At vertex `at`, every point in the neighbourhood lies on its boundary and gets
    /// weight zero (skmisc: "All data on boundary of neighborhood. make span bigger").
    AllWeightsZero { at: f64 },
}

impl fmt::Display for LoessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoessError::TooFewPoints { n } => write!(f, "loess: too few points ({n}) for the local polynomial"),
            LoessError::LengthMismatch { x_len, y_len } => {
                write!(f, "loess: x has {x_len} values but y has {y_len}")
            }
            LoessError::NonFinite { index } => write!(f, "loess: non-finite x or y at index {index}"),
            LoessError::InvalidSpan { span } => write!(f, "loess: span must be in (0, 1], got {span}"),
            LoessError::InvalidDegree { degree } => write!(f, "loess: degree must be 0, 1 or 2, got {degree}"),
            LoessError::SpanTooSmall { span, q, needed } => {
                write!(f, "loess: span {span} gives a neighbourhood of {q} points but the local fit needs at least {needed}")
            }
            LoessError::ZeroWidthNeighbourhood { at } => {
                write!(f, "loess: zero-width neighbourhood at x = {at}; make span bigger")
            }
            LoessError::AllWeightsZero { at } => {
                write!(f, "loess: all data on the boundary of the neighbourhood at x = {at}; make span bigger")
            }
        }
    }
}

impl std::error::Error for LoessError {}

/// Fitted values of `skmisc.loess.loess(x, y, span=span, degree=degree).fit()`
/// (gaussian family, interpolated surface, `cell = 0.2`, unit weights), in input order.
pub fn loess_fitted(x: &[f64], y: &[f64], span: f64, degree: usize) -> Result<Vec<f64>, LoessError> {
    if x.len() != y.len() {
        return Err(LoessError::LengthMismatch { x_len: x.len(), y_len: y.len() });
    }
    if let Some(index) = x.iter().zip(y).position(|(a, b)| !a.is_finite() || !b.is_finite()) {
        return Err(LoessError::NonFinite { index });
    }
    // skmisc's `loess.model.span` setter rejects anything outside (0, 1].
    if !(span > 0.0 && span <= 1.0) {
        return Err(LoessError::InvalidSpan { span });
    }
    if degree > 2 {
        return Err(LoessError::InvalidDegree { degree });
    }
    let n = x.len();
    // Number of local coefficients (intercept, slope, square).
    let ncoef = degree + 1;
    // dloess refuses a neighbourhood of fewer than ncoef + 1 points (ehg139: k > nf-1).
    let needed = ncoef + 1;
    if n < needed {
        return Err(LoessError::TooFewPoints { n });
    }
    // loess_workspace: nf = min(n, floor(n*span + 1e-5)).
    let q = ((n as f64 * span + 1e-5).floor() as usize).min(n);
    if q < needed {
        return Err(LoessError::SpanTooSmall { span, q, needed });
    }
    // lowesb passes ifloor(n * (span*cell)) as the cell size limit.
    let fc = (n as f64 * (span * CELL)).floor() as usize;

    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let tree = KdTree::build(&sorted, fc);

    let fitter = LocalFit { x, y, q, ncoef };
    let mut vertex_fits = Vec::with_capacity(tree.vertices.len());
    for &v in &tree.vertices {
        vertex_fits.push(fitter.fit_at(v)?);
    }
    Ok(x.iter().map(|&z| tree.interpolate(z, &vertex_fits)).collect())
}

/// A cell of the 1-D k-d tree: the interval between two vertices, the sorted-data
/// index range `[lo, hi)` it holds, and its split (if not a leaf).
#[derive(Debug, Clone)]
struct Cell {
    /// Index into `KdTree::vertices` of the lower and upper bound.
    v_lo: usize,
    v_hi: usize,
    lo: usize,
    hi: usize,
    /// `(split value, left child, right child)`; points `<= split` go left.
    split: Option<(f64, usize, usize)>,
}

#[derive(Debug, Clone)]
struct KdTree {
    vertices: Vec<f64>,
    cells: Vec<Cell>,
}

impl KdTree {
    /// ehg126 + ehg124 for one predictor. `sorted` is the data in ascending order.
    ///
    /// ehg124 partitions a permutation of the data with Floyd–Rivest selection; after
    /// each selection the lower part holds the smallest values, so which *values* end
    /// up in each cell (all the tree depends on) is the same as taking index ranges of
    /// the sorted data, which is what this does.
    fn build(sorted: &[f64], fc: usize) -> KdTree {
        let n = sorted.len();
        // ehg126: bounding box widened by 0.5% of the range on each side (with a floor
        // for a degenerate range).
        let (alpha, beta) = (sorted[0], sorted[n - 1]);
        let mu = 0.005 * (beta - alpha).max(1e-10 * alpha.abs().max(beta.abs()) + 1e-30);
        let vertices = vec![alpha - mu, beta + mu];
        let cells = vec![Cell { v_lo: 0, v_hi: 1, lo: 0, hi: n, split: None }];
        let mut tree = KdTree { vertices, cells };

        // lowesd/loess_workspace size the tree arrays: nvmax = ncmax = max(200, n);
        // ehg124 stops splitting when another split would not fit.
        let nvmax = n.max(200);
        let ncmax = nvmax;

        // Cells are visited in creation order (breadth first), as in ehg124.
        let mut p = 0;
        while p < tree.cells.len() {
            let Cell { v_lo, v_hi, lo, hi, .. } = tree.cells[p];
            let count = hi - lo;
            // (The other leaf test, diameter <= fd, never fires: fd = 0 and the box has
            // positive width.)
            let mut leaf = count <= fc || ncmax < tree.cells.len() + 2 || (nvmax as f64) < tree.vertices.len() as f64 + 1.0;
            let mut m = 0;
            if !leaf {
                // count > fc >= 0, so the cell is non-empty; inclusive bounds l..=u.
                let (l, u) = (lo, hi - 1);
                m = median_split(sorted, l, u);
                let xm = sorted[m];
                // A split on the cell's own boundary would create an empty, zero-width
                // child: make it a leaf instead.
                leaf = xm == tree.vertices[v_lo] || xm == tree.vertices[v_hi];
            }
            if !leaf {
                let xi = sorted[m];
                // ehg125: in one dimension the new vertex is never a duplicate (xi lies
                // strictly inside this cell), so it is always appended.
                let v_new = tree.vertices.len();
                tree.vertices.push(xi);
                let left = tree.cells.len();
                let right = left + 1;
                tree.cells.push(Cell { v_lo, v_hi: v_new, lo, hi: m + 1, split: None });
                tree.cells.push(Cell { v_lo: v_new, v_hi, lo: m + 1, hi, split: None });
                tree.cells[p].split = Some((xi, left, right));
            }
            p += 1;
        }
        tree
    }

    /// ehg128 for one predictor: cubic Hermite interpolation of the vertex values and
    /// slopes across the leaf cell containing `z`.
    fn interpolate(&self, z: f64, fits: &[(f64, f64)]) -> f64 {
        let mut c = 0;
        while let Some((xi, left, right)) = self.cells[c].split {
            c = if z <= xi { left } else { right };
        }
        let cell = &self.cells[c];
        let (v0, v1) = (self.vertices[cell.v_lo], self.vertices[cell.v_hi]);
        let (g0, s0) = fits[cell.v_lo];
        let (g1, s1) = fits[cell.v_hi];
        let h = (z - v0) / (v1 - v0);
        let phi0 = (1.0 - h) * (1.0 - h) * (1.0 + 2.0 * h);
        let phi1 = h * h * (3.0 - 2.0 * h);
        let psi0 = h * (1.0 - h) * (1.0 - h);
        let psi1 = h * h * (h - 1.0);
        phi0 * g0 + phi1 * g1 + (psi0 * s0 + psi1 * s1) * (v1 - v0)
    }
}

/// ehg124's split position within the inclusive sorted range `l..=u`.
///
/// Start at the median `m = floor((l+u)/2)` and look for the nearest gap between
/// distinct values, probing the pairs `(m+o, m+o+1)` for o = 0, 1, -1, 2, -2, ... so
/// that tied values are not separated ("all ties go with hi son"). The search stops at
/// the first probe that leaves `l..u`; then the plain median is kept, even if a gap
/// exists further out on the other side (this asymmetry is dloess's, kept on purpose).
fn median_split(sorted: &[f64], l: usize, u: usize) -> usize {
    let m = (l + u) / 2;
    let mut offset: isize = 0;
    loop {
        let pos = m as isize + offset;
        if pos >= u as isize || pos < l as isize {
            return m;
        }
        let pos = pos as usize;
        if sorted[pos] != sorted[pos + 1] {
            return pos;
        }
        offset = -offset;
        if offset >= 0 {
            offset += 1;
        }
    }
}

/// The local regression of ehg127 at a single point.
struct LocalFit<'a> {
    x: &'a [f64],
    y: &'a [f64],
    /// Neighbourhood size `nf`.
    q: usize,
    /// 1, 2 or 3 coefficients for degree 0, 1, 2.
    ncoef: usize,
}

impl LocalFit<'_> {
    /// Returns the local polynomial's value and slope at `at`.
    fn fit_at(&self, at: f64) -> Result<(f64, f64), LoessError> {
        let k = self.ncoef;
        // Squared distances, exactly as dloess forms them.
        let dist: Vec<f64> = self.x.iter().map(|&xi| (xi - at) * (xi - at)).collect();
        // Radius (squared): the q-th smallest squared distance. (dloess multiplies it by
        // max(1, span), which is 1 for the spans skmisc accepts.)
        let mut scratch = dist.clone();
        let (_, &mut rho, _) = scratch.select_nth_unstable_by(self.q - 1, f64::total_cmp);
        if rho <= 0.0 {
            return Err(LoessError::ZeroWidthNeighbourhood { at });
        }

        // Rows of the weighted design matrix. Only points strictly inside the radius
        // get a non-zero tricube weight; dloess also carries the q-th neighbour(s) at
        // distance rho with weight exactly 0, which changes nothing. Rows are padded
        // with zeros to at least k + 1, as dloess always has q >= k + 1 rows.
        let mut rows: Vec<[f64; 3]> = Vec::with_capacity(self.q.max(k + 1));
        let mut rhs: Vec<f64> = Vec::with_capacity(self.q.max(k + 1));
        let mut any_weight = false;
        for ((&d, &xi), &yi) in dist.iter().zip(self.x).zip(self.y) {
            if d < rho {
                // Tricube weight, square-rooted because it multiplies the rows of a
                // least-squares system.
                let r = (d / rho).sqrt();
                let t = 1.0 - r * r * r;
                let w = (t * t * t).sqrt();
                any_weight |= w != 0.0;
                let dx = xi - at;
                rows.push([w, w * dx, w * (dx * dx)]);
                rhs.push(w * yi);
            }
        }
        if !any_weight {
            return Err(LoessError::AllWeightsZero { at });
        }
        while rows.len() < k + 1 {
            rows.push([0.0; 3]);
            rhs.push(0.0);
        }
        let coef = weighted_lstsq(&mut rows, &mut rhs, k);
        Ok((coef[0], if k > 1 { coef[1] } else { 0.0 }))
    }
}

/// Least-squares solve of ehg127: equilibrate the columns to unit norm, Householder QR
/// (LINPACK dqrdc without pivoting), SVD of the k x k triangle, pseudo-inverse that
/// drops singular values `<= 100 * eps * sigma_max`, then undo the equilibration.
/// `rows` (m x k, m > k) and `rhs` are overwritten.
fn weighted_lstsq(rows: &mut [[f64; 3]], rhs: &mut [f64], k: usize) -> [f64; 3] {
    let colnorm = equilibrate(rows, k);
    householder_qr(rows, rhs, k);
    // R (upper triangle) and the first k entries of Q'y.
    let mut a = [[0.0f64; 3]; 3];
    for i in 0..k {
        for j in i..k {
            a[i][j] = rows[i][j];
        }
    }
    let qty = [rhs[0], if k > 1 { rhs[1] } else { 0.0 }, if k > 2 { rhs[2] } else { 0.0 }];
    let v = jacobi_svd(&mut a, k);
    // Column j of A is sigma_j * u_j, so (u_j . Q'y) / sigma_j = (a_j . Q'y) / sigma_j^2.
    let sq: Vec<f64> = (0..k).map(|j| (0..k).map(|i| a[i][j] * a[i][j]).sum::<f64>()).collect();
    let sigma: Vec<f64> = sq.iter().map(|s| s.sqrt()).collect();
    let tol = sigma.iter().cloned().fold(0.0, f64::max) * (100.0 * MACHEP);
    let mut gamma = [0.0f64; 3];
    for j in 0..k {
        if tol < sigma[j] {
            gamma[j] = (0..k).map(|i| a[i][j] * qty[i]).sum::<f64>() / sq[j];
        }
    }
    let mut coef = [0.0f64; 3];
    for (i, c) in coef.iter_mut().enumerate().take(k) {
        *c = (0..k).map(|j| v[i][j] * gamma[j]).sum::<f64>() / colnorm[i];
    }
    coef
}

/// Scales the first `k` columns to unit norm; returns each column's norm (1 for a zero column).
fn equilibrate(rows: &mut [[f64; 3]], k: usize) -> [f64; 3] {
    let mut colnorm = [1.0; 3];
    for j in 0..k {
        let scal = rows.iter().map(|r| r[j] * r[j]).sum::<f64>().sqrt();
        if scal > 0.0 {
            for r in rows.iter_mut() {
                r[j] /= scal;
            }
            colnorm[j] = scal;
        }
    }
    colnorm
}

/// Householder QR, applying each reflection to the right-hand side as well (the dqrdc +
/// dqrsl(job=1000) pair: R overwrites the upper triangle, rhs becomes Q'y).
fn householder_qr(rows: &mut [[f64; 3]], rhs: &mut [f64], k: usize) {
    let m = rows.len();
    for l in 0..k.min(m) {
        let mut nrm = (l..m).map(|i| rows[i][l] * rows[i][l]).sum::<f64>().sqrt();
        if nrm == 0.0 {
            continue;
        }
        if rows[l][l] != 0.0 {
            nrm = nrm.copysign(rows[l][l]);
        }
        for r in rows[l..].iter_mut() {
            r[l] /= nrm;
        }
        rows[l][l] += 1.0;
        let pivot = rows[l][l];
        for j in l + 1..k {
            let t = -(l..m).map(|i| rows[i][l] * rows[i][j]).sum::<f64>() / pivot;
            for r in rows[l..].iter_mut() {
                r[j] += t * r[l];
            }
        }
        let t = -(l..m).map(|i| rows[i][l] * rhs[i]).sum::<f64>() / pivot;
        for i in l..m {
            rhs[i] += t * rows[i][l];
        }
        rows[l][l] = -nrm;
    }
}

/// One-sided Jacobi SVD of the k x k `a`: rotates column pairs until they are orthogonal,
/// so that afterwards `a` holds U S; returns V (A V = U S).
fn jacobi_svd(a: &mut [[f64; 3]; 3], k: usize) -> [[f64; 3]; 3] {
    let mut v = [[0.0f64; 3]; 3];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..k {
            for qc in p + 1..k {
                let alpha: f64 = (0..k).map(|i| a[i][p] * a[i][p]).sum();
                let beta: f64 = (0..k).map(|i| a[i][qc] * a[i][qc]).sum();
                let gamma: f64 = (0..k).map(|i| a[i][p] * a[i][qc]).sum();
                if gamma == 0.0 || gamma.abs() <= MACHEP * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for row in a.iter_mut().chain(v.iter_mut()) {
                    let (ap, aq) = (row[p], row[qc]);
                    row[p] = c * ap - s * aq;
                    row[qc] = s * ap + c * aq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize) -> Vec<f64> {
        // Uneven but deterministic spacing.
        (0..n).map(|i| -3.0 + 5.0 * ((i as f64) / (n as f64 - 1.0)).powf(1.3)).collect()
    }

    #[test]
    fn reproduces_quadratic_with_degree_2() {
        let x = grid(200);
        let y: Vec<f64> = x.iter().map(|&v| 0.5 - 1.2 * v + 0.3 * v * v).collect();
        let fit = loess_fitted(&x, &y, 0.3, 2).unwrap();
        for (f, t) in fit.iter().zip(&y) {
            assert!((f - t).abs() < 1e-10, "{f} vs {t}");
        }
    }

    #[test]
    fn reproduces_line_with_degree_1_and_0_on_constant() {
        let x = grid(120);
        let y: Vec<f64> = x.iter().map(|&v| 2.0 + 0.7 * v).collect();
        let fit = loess_fitted(&x, &y, 0.75, 1).unwrap();
        for (f, t) in fit.iter().zip(&y) {
            assert!((f - t).abs() < 1e-10, "{f} vs {t}");
        }
        let c = vec![1.5; x.len()];
        let fit = loess_fitted(&x, &c, 0.5, 0).unwrap();
        assert!(fit.iter().all(|f| (f - 1.5).abs() < 1e-12));
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let x = grid(150);
        let y: Vec<f64> = x.iter().map(|&v| v.sin() + 0.1 * (7.0 * v).cos()).collect();
        let fit = loess_fitted(&x, &y, 0.3, 2).unwrap();
        let rx: Vec<f64> = x.iter().rev().cloned().collect();
        let ry: Vec<f64> = y.iter().rev().cloned().collect();
        let rfit = loess_fitted(&rx, &ry, 0.3, 2).unwrap();
        for (a, b) in fit.iter().zip(rfit.iter().rev()) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn rank_deficient_local_fit_uses_pseudo_inverse() {
        // Two distinct x values: around x = 0 only the x = 0 points have weight, so the
        // slope and square columns vanish and the minimum-norm solution is the mean.
        let x: Vec<f64> = (0..200).map(|i| if i < 100 { 0.0 } else { 1.0 }).collect();
        let y: Vec<f64> = (0..200).map(|i| (i % 7) as f64 + if i < 100 { 0.0 } else { 10.0 }).collect();
        let fit = loess_fitted(&x, &y, 1.0, 2).unwrap();
        let mean0 = y[..100].iter().sum::<f64>() / 100.0;
        assert!(fit.iter().all(|f| f.is_finite()));
        assert!((fit[0] - mean0).abs() < 1e-12, "{} vs {mean0}", fit[0]);
    }

    #[test]
    fn median_split_keeps_ties_together() {
        // Median at index 3 sits inside a run of 2.0; nearest gap is after index 4.
        let s = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 4.0];
        assert_eq!(median_split(&s, 0, 6), 4);
        let s = [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        // Probes 3,4,2,5,1 are all tied; the probe at 6 leaves the range -> median.
        assert_eq!(median_split(&s, 0, 6), 3);
        let s = [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        assert_eq!(median_split(&s, 0, 7), 0);
    }

    #[test]
    fn errors() {
        assert_eq!(loess_fitted(&[1.0, 2.0], &[1.0], 0.3, 2), Err(LoessError::LengthMismatch { x_len: 2, y_len: 1 }));
        let x = grid(50);
        let mut y = x.clone();
        y[7] = f64::NAN;
        assert_eq!(loess_fitted(&x, &y, 0.3, 2), Err(LoessError::NonFinite { index: 7 }));
        assert_eq!(loess_fitted(&x, &x, 0.0, 2), Err(LoessError::InvalidSpan { span: 0.0 }));
        assert_eq!(loess_fitted(&x, &x, 1.5, 2), Err(LoessError::InvalidSpan { span: 1.5 }));
        assert!(matches!(loess_fitted(&x, &x, f64::NAN, 2), Err(LoessError::InvalidSpan { .. })));
        assert_eq!(loess_fitted(&x, &x, 0.3, 3), Err(LoessError::InvalidDegree { degree: 3 }));
        assert_eq!(loess_fitted(&[0.0, 1.0, 2.0], &[0.0, 1.0, 2.0], 1.0, 2), Err(LoessError::TooFewPoints { n: 3 }));
        assert!(matches!(loess_fitted(&x[..12], &x[..12], 0.3, 2), Err(LoessError::SpanTooSmall { q: 3, needed: 4, .. })));
        // Twenty copies of 5.5 among 1..=10: the tree puts a vertex at 5.5, whose nine
        // nearest neighbours are all at distance zero.
        let mut xt: Vec<f64> = (1..=10).map(f64::from).collect();
        xt.extend(std::iter::repeat_n(5.5, 20));
        assert_eq!(loess_fitted(&xt, &xt, 0.3, 2), Err(LoessError::ZeroWidthNeighbourhood { at: 5.5 }));
        // Ten copies of each of 0, 1, 2: the nine nearest neighbours of the lower box
        // corner are all tied on the neighbourhood boundary.
        let xt: Vec<f64> = (0..30).map(|i| (i / 10) as f64).collect();
        assert!(matches!(loess_fitted(&xt, &xt, 0.3, 2), Err(LoessError::AllWeightsZero { .. })));
        assert!(loess_fitted(&[], &[], 0.3, 2).is_err());
    }
}
