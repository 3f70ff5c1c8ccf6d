//! The output-base lock: a directory in, a held exclusive `flock` on `<dir>/lock` out, so two
//! forge commands never build into the same output base at once. A second command waits and
//! says once who it is waiting for (the pid the holder wrote into the file).
//!
//! `flock` belongs to the open file description and is released by the kernel when the holder
//! exits or closes the file, so a crashed forge never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Held while alive; dropping it (or exiting) releases the lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Locks `<dir>/lock`, waiting if another process holds it, after printing
/// `Another forge command (pid N) is running in this output base. Waiting for it to finish...`
/// to stderr.
pub fn lock_output_base(dir: &Path) -> io::Result<Lock> {
    lock_output_base_with(dir, &mut |message| eprintln!("{message}"))
}

/// `lock_output_base` with the waiting message handed to `notify` instead of stderr.
pub fn lock_output_base_with(dir: &Path, notify: &mut dyn FnMut(&str)) -> io::Result<Lock> {
    super::perform::ensure_dir(dir)?;
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            // The holder may be mid-write; an unreadable pid just gives a vaguer message.
            let _ = file.read_to_string(&mut text);
            let message = match text.trim().parse::<u32>() {
                Ok(pid) => format!(
                    "Another forge command (pid {pid}) is running in this output base. Waiting for it to finish..."
                ),
                Err(_) => "Another forge command is running in this output base. Waiting for it to finish..."
                    .to_owned(),
            };
            notify(&message);
            file.lock()?;
        }
        Err(TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn second_locker_waits_and_names_the_holder() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = lock_output_base_with(dir.path(), &mut |_| {})?;
        assert_eq!(
            std::fs::read_to_string(dir.path().join("lock"))?,
            std::process::id().to_string()
        );
        let (tx, rx) = mpsc::channel::<String>();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let tx2 = tx.clone();
            let lock = lock_output_base_with(&path, &mut |m| {
                let _ = tx2.send(m.to_owned());
            });
            let _ = tx.send("acquired".to_owned());
            lock.map(drop)
        });
        let msg = rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(io::Error::other)?;
        assert_eq!(
            msg,
            format!(
                "Another forge command (pid {}) is running in this output base. Waiting for it to finish...",
                std::process::id()
            )
        );
        // Still blocked while we hold the lock.
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(first);
        let msg = rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(io::Error::other)?;
        assert_eq!(msg, "acquired");
        waiter
            .join()
            .map_err(|_| io::Error::other("waiter panicked"))??;
        Ok(())
    }
}
