//! Steady-state response of the network to a clamped perturbation.
//!
//! Each gene's log-expression deviation from control, `d_g`, is a saturating (Hill-type)
//! function of the signed, weighted deviations of its regulators:
//!
//! `d_g = A_g * sign(z_g) * |z_g|^n_g / (K^n_g + |z_g|^n_g)`, `z_g = sum_r w_rg * d_r`
//!
//! with the perturbed genes clamped at their CRISPRa/CRISPRi shift. The fixed point is
//! found by damped iteration. Because the response saturates (n = 1: concave, so two
//! perturbations that reach the same gene give less than the sum — buffering) or has a
//! threshold (n = 2: convex at first, so they give more — synergy), interactions arise
//! from the network's shape, not from a list of interacting pairs.

/// Knobs of the response model.
#[derive(Debug, Clone, Copy)]
pub struct ResponseParams {
    /// Half-saturation input `K`.
    pub half_saturation: f64,
    /// Share of genes whose response has a threshold (Hill n = 2) instead of n = 1.
    pub threshold_share: f64,
    /// Median edge weight magnitude; weights are log-normal around it.
    pub edge_weight: f64,
    /// Log-scale spread of edge weights.
    pub edge_weight_spread: f64,
    /// Median maximal response `A_g` (natural log units).
    pub amplitude: f64,
    pub amplitude_spread: f64,
    /// CRISPRa: target log-shift drawn uniformly in this range (natural log units).
    pub activation_shift: (f64, f64),
    /// CRISPRi: target log-shift (negative) drawn uniformly in this range.
    pub interference_shift: (f64, f64),
    /// Median negative-binomial dispersion of counts (variance = m + phi m^2).
    pub dispersion: f64,
}

impl Default for ResponseParams {
    fn default() -> Self {
        ResponseParams {
            half_saturation: 1.0,
            threshold_share: 0.25,
            edge_weight: 0.5,
            edge_weight_spread: 0.5,
            amplitude: 0.8,
            amplitude_spread: 0.5,
            activation_shift: (1.5, 3.5),
            interference_shift: (-2.3, -1.0),
            dispersion: 0.05,
        }
    }
}

/// The network as the solver uses it: regulators of each gene with weights.
#[derive(Debug, Clone)]
pub struct Regulation {
    /// Per gene: (regulator index, weight).
    pub inputs: Vec<Vec<(usize, f64)>>,
    pub amplitude: Vec<f64>,
    pub hill_n: Vec<u8>,
    pub half_saturation: f64,
}

impl Regulation {
    fn response(&self, g: usize, z: f64) -> f64 {
        let a = z.abs();
        let k = self.half_saturation;
        let r = if self.hill_n[g] == 2 { a * a / (k * k + a * a) } else { a / (k + a) };
        // Scaled so that the slope of the n = 1 curve at 0 is A/K and both reach A.
        self.amplitude[g] * r * z.signum()
    }

    /// Log-expression deviations at steady state with `clamped` genes held at their shifts.
    pub fn steady_state(&self, clamped: &[(usize, f64)]) -> Vec<f64> {
        let n = self.inputs.len();
        let mut d = vec![0.0; n];
        let mut is_clamped = vec![false; n];
        for &(g, shift) in clamped {
            d[g] = shift;
            is_clamped[g] = true;
        }
        let mut next = d.clone();
        for _ in 0..60 {
            let mut change = 0.0f64;
            for g in 0..n {
                if is_clamped[g] || self.inputs[g].is_empty() {
                    continue;
                }
                let z: f64 = self.inputs[g].iter().map(|&(r, w)| w * d[r]).sum();
                // Damping keeps feedback loops from oscillating.
                let v = 0.5 * d[g] + 0.5 * self.response(g, z);
                change = change.max((v - d[g]).abs());
                next[g] = v;
            }
            std::mem::swap(&mut d, &mut next);
            for &(g, shift) in clamped {
                d[g] = shift;
            }
            next.copy_from_slice(&d);
            if change < 1e-7 {
                break;
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A -> C and B -> C, both activating, C saturating (n = 1).
    fn fan_in(hill: u8) -> Regulation {
        Regulation { inputs: vec![vec![], vec![], vec![(0, 1.0), (1, 1.0)]], amplitude: vec![1.0; 3], hill_n: vec![1, 1, hill], half_saturation: 1.0 }
    }

    #[test]
    fn saturation_buffers_and_thresholds_synergise() {
        for (hill, buffering) in [(1u8, true), (2u8, false)] {
            let r = fan_in(hill);
            let a = r.steady_state(&[(0, 0.5)])[2];
            let b = r.steady_state(&[(1, 0.5)])[2];
            let ab = r.steady_state(&[(0, 0.5), (1, 0.5)])[2];
            if buffering {
                assert!(ab < a + b, "n=1: {ab} vs {a}+{b}");
            } else {
                assert!(ab > a + b, "n=2: {ab} vs {a}+{b}");
            }
        }
    }

    #[test]
    fn clamped_genes_keep_their_shift_and_unreached_genes_stay_put() {
        let mut r = fan_in(1);
        r.inputs.push(vec![]);
        r.amplitude.push(1.0);
        r.hill_n.push(1);
        let d = r.steady_state(&[(0, 2.0)]);
        assert_eq!(d[0], 2.0);
        assert_eq!(d[1], 0.0);
        assert!(d[2] > 0.0 && d[2] < 1.0);
        assert_eq!(d[3], 0.0);
    }

    #[test]
    fn repression_lowers_the_target() {
        let r = Regulation { inputs: vec![vec![], vec![(0, -1.0)]], amplitude: vec![1.0; 2], hill_n: vec![1; 2], half_saturation: 1.0 };
        assert!(r.steady_state(&[(0, 1.0)])[1] < 0.0);
    }
}
