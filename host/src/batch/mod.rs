//! Recorded files, all at once rather than live: [`dataset`] reads a CSV file's rows
//! (bounded memory per row), [`score`] judges them (`zscope score`), [`eval`] measures
//! detectors on labelled series and the simulator (`zscope eval`), [`nab`] scores them the
//! way the Numenta Anomaly Benchmark does.

pub mod dataset;
pub mod eval;
pub mod nab;
pub mod score;
