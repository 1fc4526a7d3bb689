//! The ingest stage's artifacts read back as one object: a condition × gene matrix of
//! pseudobulk means and variances, the control profile, and each condition's genes. Every
//! later stage (training, evaluation) reads the screen through this.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::schema::{conditions as cs, genes as gs, pseudobulk as ps};
use crate::{Condition, Error, Result, Table};

mod pseudobulk;

#[derive(Debug, Clone)]
pub struct IngestedScreen {
    pub genes: Vec<String>,
    /// Canonical names; index 0 is the control.
    pub conditions: Vec<String>,
    /// Perturbed genes of each condition (empty for the control).
    pub targets: Vec<Vec<String>>,
    pub n_cells: Vec<i64>,
    /// Row-major condition × gene means of log-normalised expression.
    pub mean: Vec<f64>,
    pub variance: Vec<f64>,
}

/// Refuses the top folder of an ingest with `--context-key`: it holds `contexts.parquet`
/// and one ingest folder per context, and every later stage works within one context.
pub fn refuse_context_root(dir: &Path) -> Result<()> {
    let listing = dir.join(crate::schema::contexts::FILE);
    if dir.join(gs::FILE).exists() || !listing.exists() {
        return Ok(());
    }
    let table = Table::read_parquet(&listing)?;
    let folders = table.strings(crate::schema::contexts::FOLDER, &listing)?;
    let first = folders.first().map_or_else(String::new, |f| format!(", e.g. {}", dir.join(f).display()));
    Err(Error::bad_input(
        dir,
        format!("holds one ingest per context ({}: {}), not one screen; pass one context's folder{first}", crate::schema::contexts::FILE, folders.join(", ")),
    ))
}

impl IngestedScreen {
    pub fn read(dir: &Path) -> Result<IngestedScreen> {
        refuse_context_root(dir)?;
        let gp = dir.join(gs::FILE);
        let cp = dir.join(cs::FILE);
        let pp = dir.join(ps::FILE);
        let genes = Table::read_parquet(&gp)?.strings(gs::GENE, &gp)?.to_vec();
        let ct = Table::read_parquet(&cp)?;
        let conditions = ct.strings(cs::CONDITION, &cp)?.to_vec();
        let targets = ct.string_lists(cs::GENES, &cp)?.to_vec();
        let n_cells = ct.ints(cs::N_CELLS, &cp)?.to_vec();
        if conditions.first().map(String::as_str) != Some("ctrl") {
            return Err(Error::bad_input(&cp, "the first condition must be the control ('ctrl')"));
        }
        let (mean, variance) = pseudobulk::read(&pp, &conditions, &genes)?;
        if mean.iter().any(|m| m.is_nan()) {
            return Err(Error::bad_input(&pp, "some (condition, gene) pairs have no pseudobulk row"));
        }
        Ok(IngestedScreen { genes, conditions, targets, n_cells, mean, variance })
    }

    pub fn n_genes(&self) -> usize {
        self.genes.len()
    }

    pub fn row(&self, condition: usize) -> &[f64] {
        let n = self.n_genes();
        &self.mean[condition * n..(condition + 1) * n]
    }

    pub fn variance_row(&self, condition: usize) -> &[f64] {
        let n = self.n_genes();
        &self.variance[condition * n..(condition + 1) * n]
    }

    pub fn control(&self) -> &[f64] {
        self.row(0)
    }

    pub fn index_of(&self, canonical: &str) -> Option<usize> {
        self.conditions.iter().position(|c| c == canonical)
    }

    /// The index of the single-gene condition perturbing `gene`, if measured.
    pub fn single(&self, gene: &str) -> Option<usize> {
        self.targets.iter().position(|t| t.len() == 1 && t[0] == gene)
    }

    pub fn canonical(label: &str) -> std::result::Result<String, String> {
        Condition::parse_canonical(label).map(|c| c.canonical())
    }
}

/// A perturbation's effect in the other contexts of a screen (see [`effects_elsewhere`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectElsewhere {
    /// Its perturbed genes.
    pub targets: Vec<String>,
    /// Its mean − the control's mean, on the genes asked for, averaged over the contexts.
    pub effect: Vec<f64>,
}

/// Every perturbation's effect on `genes` (by name) in the ingest folders `dirs` — the
/// other contexts of one screen (`perturb ingest --context-key`) — averaged over the
/// folders that measured it, by canonical condition name. Each folder must measure every
/// one of `genes`. The transfer baselines and the models that read other contexts share it.
pub fn effects_elsewhere(dirs: &[PathBuf], genes: &[String]) -> Result<BTreeMap<String, EffectElsewhere>> {
    let mut sums: BTreeMap<String, (EffectElsewhere, usize)> = BTreeMap::new();
    for dir in dirs {
        let other = IngestedScreen::read(dir)?;
        let index: HashMap<&str, usize> = other.genes.iter().enumerate().map(|(g, name)| (name.as_str(), g)).collect();
        let columns: Vec<usize> = genes
            .iter()
            .map(|g| {
                index.get(g.as_str()).copied().ok_or_else(|| {
                    Error::bad_input(dir, format!("does not measure gene '{g}' of the screen it is read beside; the contexts of one ingest share their genes"))
                })
            })
            .collect::<Result<_>>()?;
        for c in 1..other.conditions.len() {
            let (row, control) = (other.row(c), other.control());
            let entry = sums
                .entry(other.conditions[c].clone())
                .or_insert_with(|| (EffectElsewhere { targets: other.targets[c].clone(), effect: vec![0.0; columns.len()] }, 0));
            for (sum, &g) in entry.0.effect.iter_mut().zip(&columns) {
                *sum += row[g] - control[g];
            }
            entry.1 += 1;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(name, (mut e, n))| {
            e.effect.iter_mut().for_each(|v| *v /= n as f64);
            (name, e)
        })
        .collect())
}
