//! GEARS' GO graph: two genes are linked when the Jaccard similarity of their GO-term
//! sets exceeds a threshold, keeping each gene's `top_k` most similar genes.
//!
//! Intersections are counted through an inverted index (term -> genes), so the cost is
//! the sum over terms of (genes in term)^2 restricted to the graph's genes, not all pairs.

/// Directed edges `gene -> neighbour` with the Jaccard similarity as weight; for each
/// gene its `top_k` neighbours above `min_jaccard` (ties by neighbour index).
pub fn jaccard_top_k(term_sets: &[Vec<u32>], n_terms: usize, min_jaccard: f64, top_k: usize, threads: usize) -> Vec<(usize, usize, f64)> {
    let n = term_sets.len();
    let mut genes_of_term: Vec<Vec<u32>> = vec![Vec::new(); n_terms];
    for (g, terms) in term_sets.iter().enumerate() {
        for &t in terms {
            genes_of_term[t as usize].push(g as u32);
        }
    }
    let threads = threads.max(1);
    let mut parts: Vec<Vec<(usize, usize, f64)>> = vec![Vec::new(); threads];
    std::thread::scope(|scope| {
        for (w, part) in parts.iter_mut().enumerate() {
            let genes_of_term = &genes_of_term;
            scope.spawn(move || {
                let mut shared = vec![0u32; n];
                let mut touched: Vec<u32> = Vec::new();
                let mut scored: Vec<(f64, usize)> = Vec::new();
                for g in (w..n).step_by(threads) {
                    let terms = &term_sets[g];
                    if terms.is_empty() {
                        continue;
                    }
                    for &t in terms {
                        for &h in &genes_of_term[t as usize] {
                            if shared[h as usize] == 0 {
                                touched.push(h);
                            }
                            shared[h as usize] += 1;
                        }
                    }
                    scored.clear();
                    for &h in &touched {
                        let h = h as usize;
                        if h != g {
                            let inter = f64::from(shared[h]);
                            let union = (terms.len() + term_sets[h].len()) as f64 - inter;
                            let j = inter / union;
                            if j > min_jaccard {
                                scored.push((j, h));
                            }
                        }
                        shared[h] = 0;
                    }
                    touched.clear();
                    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    part.extend(scored.iter().take(top_k).map(|&(j, h)| (g, h, j)));
                }
            });
        }
    });
    let mut edges: Vec<(usize, usize, f64)> = parts.into_iter().flatten().collect();
    edges.sort_by_key(|a| (a.0, a.1));
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_threshold_and_top_k() {
        // gene 0: {0,1,2}; gene 1: {0,1}; gene 2: {2,3}; gene 3: {4}
        let sets = vec![vec![0, 1, 2], vec![0, 1], vec![2, 3], vec![4]];
        let all = jaccard_top_k(&sets, 5, 0.1, 20, 2);
        // J(0,1) = 2/3, J(0,2) = 1/4, J(1,2) = 0, gene 3 shares nothing.
        assert_eq!(all, vec![(0, 1, 2.0 / 3.0), (0, 2, 0.25), (1, 0, 2.0 / 3.0), (2, 0, 0.25)]);
        let top1 = jaccard_top_k(&sets, 5, 0.1, 1, 1);
        assert_eq!(top1, vec![(0, 1, 2.0 / 3.0), (1, 0, 2.0 / 3.0), (2, 0, 0.25)]);
        let strict = jaccard_top_k(&sets, 5, 0.3, 20, 1);
        assert_eq!(strict, vec![(0, 1, 2.0 / 3.0), (1, 0, 2.0 / 3.0)]);
    }
}
