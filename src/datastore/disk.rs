//! The file operations running's persistence needs, behind a trait so that
//! a test can stand in for the disk and lose, at a simulated power cut,
//! every byte that was written but not yet synced (a SIGKILL keeps the page
//! cache, so only such a layer shows what a power loss leaves).
//!
//! The real disk ([`Fs`]) writes through `persist` (temp file, fsync,
//! rename, fsync the directory) and appends with `pwrite` + `fdatasync`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::{persist, FILE_MODE};

/// A file open for writing in place.
pub trait DiskFile: Send {
    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every byte written so far durable.
    fn sync(&mut self) -> io::Result<()>;
}

pub trait Disk: Send + Sync {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Replaces `path` with `data`, durably and atomically (old or new
    /// content after a crash, never a mix), mode 0600.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Renames durably; the target must not exist (nothing is overwritten).
    fn rename_new(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Renames `path` to `<path>.rejected-<unix time>[-n]`, a name not in
    /// use (nothing is overwritten); returns the new name.
    fn move_aside(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut n = 0;
        loop {
            let suffix = if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            };
            let to =
                std::path::PathBuf::from(format!("{}.rejected-{stamp}{suffix}", path.display()));
            match self.rename_new(path, &to) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                r => return r.map(|()| to),
            }
        }
    }
}

/// The real file system.
pub struct Fs;

struct FsFile(File);

impl DiskFile for FsFile {
    fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Disk for Fs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        persist::write_atomic(path, data, FILE_MODE)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let f = OpenOptions::new().write(true).mode(FILE_MODE).open(path)?;
        Ok(Box::new(FsFile(f)))
    }
    fn rename_new(&self, from: &Path, to: &Path) -> io::Result<()> {
        if to.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", to.display()),
            ));
        }
        std::fs::rename(from, to)?;
        if let Some(dir) = to.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub mod power_loss {
    //! A disk that forgets unsynced writes at a simulated power cut, and
    //! that can "die" after a given number of operations (every operation
    //! after that fails, as if the process had been killed there).

    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct State {
        /// What survives a power cut.
        durable: HashMap<PathBuf, Vec<u8>>,
        /// What a reader sees now.
        current: HashMap<PathBuf, Vec<u8>>,
        /// Writes since the file's last sync, in order.
        pending: HashMap<PathBuf, Vec<(u64, Vec<u8>)>>,
        /// Operations left before the simulated death (None: never).
        budget: Option<u64>,
    }

    #[derive(Clone, Default)]
    pub struct PowerLossDisk(Arc<Mutex<State>>);

    fn dead() -> io::Error {
        io::Error::other("simulated power cut")
    }

    fn write_into(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
        let end = offset as usize + data.len();
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset as usize..end].copy_from_slice(data);
    }

    impl PowerLossDisk {
        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// One more operation, or the simulated death.
        fn step(s: &mut State) -> io::Result<()> {
            match &mut s.budget {
                Some(0) => Err(dead()),
                Some(n) => {
                    *n -= 1;
                    Ok(())
                }
                None => Ok(()),
            }
        }

        /// Every operation after the next `n` fails.
        pub fn die_after(&self, n: u64) {
            self.lock().budget = Some(n);
        }

        /// The power cut: each file keeps its synced bytes plus the first
        /// `keep` of its unsynced writes and a torn prefix of the next one
        /// (`torn` bytes of it), as a disk writing in order may leave them.
        pub fn power_cut(&self, keep: usize, torn: usize) {
            let mut s = self.lock();
            let pending = std::mem::take(&mut s.pending);
            let mut files = s.durable.clone();
            for (path, writes) in pending {
                let buf = files.entry(path).or_default();
                for (i, (off, data)) in writes.iter().enumerate() {
                    if i < keep {
                        write_into(buf, *off, data);
                    } else {
                        write_into(buf, *off, &data[..torn.min(data.len())]);
                        break;
                    }
                }
            }
            s.durable = files.clone();
            s.current = files;
            s.budget = None;
        }

        /// A file's content as a reader sees it now.
        pub fn content(&self, path: &Path) -> Option<Vec<u8>> {
            self.lock().current.get(path).cloned()
        }

        pub fn put(&self, path: &Path, data: &[u8]) {
            let mut s = self.lock();
            s.current.insert(path.to_path_buf(), data.to_vec());
            s.durable.insert(path.to_path_buf(), data.to_vec());
        }
    }

    struct LossyFile {
        disk: PowerLossDisk,
        path: PathBuf,
    }

    impl DiskFile for LossyFile {
        fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
            let mut s = self.disk.lock();
            PowerLossDisk::step(&mut s)?;
            let buf = s.current.entry(self.path.clone()).or_default();
            write_into(buf, offset, data);
            s.pending
                .entry(self.path.clone())
                .or_default()
                .push((offset, data.to_vec()));
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            let mut s = self.disk.lock();
            PowerLossDisk::step(&mut s)?;
            let now = s.current.get(&self.path).cloned().unwrap_or_default();
            s.durable.insert(self.path.clone(), now);
            s.pending.remove(&self.path);
            Ok(())
        }
    }

    impl Disk for PowerLossDisk {
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.lock()
                .current
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
        fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            let mut s = self.lock();
            PowerLossDisk::step(&mut s)?;
            s.current.insert(path.to_path_buf(), data.to_vec());
            s.durable.insert(path.to_path_buf(), data.to_vec());
            s.pending.remove(path);
            Ok(())
        }
        fn open_write(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
            let mut s = self.lock();
            PowerLossDisk::step(&mut s)?;
            if !s.current.contains_key(path) {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            Ok(Box::new(LossyFile {
                disk: self.clone(),
                path: path.to_path_buf(),
            }))
        }
        fn rename_new(&self, from: &Path, to: &Path) -> io::Result<()> {
            let mut s = self.lock();
            PowerLossDisk::step(&mut s)?;
            if s.current.contains_key(to) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            let data = s
                .current
                .remove(from)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            s.durable.remove(from);
            s.pending.remove(from);
            s.current.insert(to.to_path_buf(), data.clone());
            s.durable.insert(to.to_path_buf(), data);
            Ok(())
        }
    }
}
