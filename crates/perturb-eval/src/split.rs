//! Benchmark splits, seeded and written as Parquet so every model sees exactly the same
//! conditions.
//!
//! - `double` (Norman protocol): all singles and a random half of the doubles train, the
//!   other doubles test.
//! - `unseen_single` (GEARS "simulation" style): 75% of the singly perturbed genes train
//!   (a tenth of those held out as validation), the singles of the other genes test.
//! - `unseen_context` (the stricter transfer task): every perturbation of the screen
//!   tests, none trains; they are predicted from the same perturbations in the screen's
//!   other contexts (`perturb eval --other-context`). The split is the same for every seed.
//!
//! Test doubles carry `combo_seen`: how many of their two genes were perturbed alone in
//! training (GEARS' combo_seen0/1/2).

use std::collections::HashSet;
use std::path::Path;

use perturb_core::split::SplitRow;
use perturb_core::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::Screen;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    Double,
    UnseenSingle,
    UnseenContext,
}

perturb_core::named_enum!(Task, "task", name, { Double => "double", UnseenSingle => "unseen_single", UnseenContext => "unseen_context" });

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    Train,
    Val,
    Test,
}

impl Set {
    pub fn name(self) -> &'static str {
        match self {
            Set::Train => "train",
            Set::Val => "val",
            Set::Test => "test",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Split {
    pub task: Task,
    pub seed: u64,
    /// Per condition of the screen (control included, always train): its set, or None
    /// when the task does not use it.
    pub set: Vec<Option<Set>>,
    /// Per condition: for test doubles, genes seen alone in training; else -1.
    pub combo_seen: Vec<i64>,
}

impl Split {
    pub fn indices(&self, set: Set) -> Vec<usize> {
        (0..self.set.len()).filter(|&i| self.set[i] == Some(set)).collect()
    }
}

pub fn make(screen: &Screen, task: Task, seed: u64, data_dir: &Path) -> Result<Split> {
    let n = screen.conditions.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut set = vec![None; n];
    set[0] = Some(Set::Train);
    let singles: Vec<usize> = (0..n).filter(|&i| screen.targets[i].len() == 1).collect();
    let doubles: Vec<usize> = (0..n).filter(|&i| screen.targets[i].len() == 2).collect();
    match task {
        Task::Double => {
            if doubles.len() < 2 {
                return Err(Error::bad_input(data_dir, format!("the double task needs at least 2 double perturbations; this data set has {}", doubles.len())));
            }
            for &i in &singles {
                set[i] = Some(Set::Train);
            }
            let mut d = doubles.clone();
            d.shuffle(&mut rng);
            let half = d.len() / 2;
            for (k, &i) in d.iter().enumerate() {
                set[i] = Some(if k < half { Set::Train } else { Set::Test });
            }
        }
        Task::UnseenSingle => {
            if singles.len() < 4 {
                return Err(Error::bad_input(
                    data_dir,
                    format!("the unseen_single task needs at least 4 single perturbations; this data set has {}", singles.len()),
                ));
            }
            let mut s = singles.clone();
            s.shuffle(&mut rng);
            let n_train = ((s.len() as f64) * 0.75).round() as usize;
            let n_val = (n_train / 10).max(1);
            for (k, &i) in s.iter().enumerate() {
                set[i] = Some(if k < n_train - n_val {
                    Set::Train
                } else if k < n_train {
                    Set::Val
                } else {
                    Set::Test
                });
            }
        }
        Task::UnseenContext => {
            for i in 1..n {
                set[i] = Some(Set::Test);
            }
        }
    }
    let seen: HashSet<&str> = (0..n).filter(|&i| set[i] == Some(Set::Train) && screen.targets[i].len() == 1).map(|i| screen.targets[i][0].as_str()).collect();
    let combo_seen = (0..n)
        .map(|i| {
            if set[i] == Some(Set::Test) && screen.targets[i].len() == 2 {
                screen.targets[i].iter().filter(|g| seen.contains(g.as_str())).count() as i64
            } else {
                -1
            }
        })
        .collect();
    let split = Split { task, seed, set, combo_seen };
    if split.indices(Set::Test).is_empty() {
        return Err(Error::bad_input(data_dir, format!("the {} split with seed {seed} has no test conditions", task.name())));
    }
    Ok(split)
}

pub fn write(split: &Split, screen: &Screen, path: &Path) -> Result<()> {
    let rows: Vec<SplitRow> = (0..split.set.len())
        .filter_map(|i| {
            split.set[i].map(|set| SplitRow {
                task: split.task.name().to_string(),
                seed: split.seed as i64,
                condition: screen.conditions[i].clone(),
                set: set.name().to_string(),
                combo_seen: split.combo_seen[i],
            })
        })
        .collect();
    perturb_core::split::write(&rows, path)
}
