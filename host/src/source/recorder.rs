//! `--record FILE`: every byte read from the line, appended to a file, to be replayed later
//! (`zscope replay FILE`) with exactly the device's verdicts.

use std::io::Write;

/// Appends every byte read from the line to a file (`--record`), to be replayed later with
/// exactly the device's verdicts.
pub struct Recorder {
    file: std::fs::File,
    path: String,
    failed: bool,
}

impl Recorder {
    /// Open `path` for appending; a recording starts with a 0x00 (so a replay drops any partial
    /// frame before it, and `zscope replay` knows the file for a recording).
    pub fn open(path: &std::path::Path) -> std::io::Result<Recorder> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(&[0])?;
        Ok(Recorder {
            file,
            path: path.display().to_string(),
            failed: false,
        })
    }

    /// Append `bytes`; a failure is logged once and returned (to show in the status).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Err(e) = self.file.write_all(bytes) {
            if !self.failed {
                tracing::error!("cannot write the recording {}: {e}", self.path);
            }
            self.failed = true;
            return Err(format!("recording {}: {e}", self.path));
        }
        self.failed = false;
        Ok(())
    }
}
