//! Where `label-cli` keeps the session token between commands: one file, readable and
//! writable by its owner only (mode 0600), by default `token` in the user's config
//! directory for label-cli.
//!
//! It must not print the token, and must not leave a token file others can read.

use std::io::Write;
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

use crate::CliError;

/// The token file.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// The token file at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// `token` in the user's config directory for label-cli (on Linux
    /// `$XDG_CONFIG_HOME/label-cli/token`, else `~/.config/label-cli/token`).
    pub fn default_location() -> Result<Self, CliError> {
        let dirs = ProjectDirs::from("", "", "label-cli").ok_or_else(|| {
            CliError::Usage(
                "no home directory to keep the token in: pass --token-file or set \
                 LABEL_CLI_TOKEN_FILE"
                    .to_owned(),
            )
        })?;
        Ok(Self::new(dirs.config_dir().join("token")))
    }

    /// Where the token is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kept token; none kept is a usage error (log in first).
    pub fn read(&self) -> Result<String, CliError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.not_logged_in());
            }
            Err(error) => {
                return Err(CliError::Usage(format!(
                    "cannot read the token file {}: {error}",
                    self.path.display()
                )));
            }
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(self.not_logged_in());
        }
        Ok(token.to_owned())
    }

    fn not_logged_in(&self) -> CliError {
        CliError::Usage(format!(
            "not logged in (no token in {}): run `label-cli login` first",
            self.path.display()
        ))
    }

    /// Keeps `token`, replacing any other, in a file only its owner may read.
    pub fn write(&self, token: &str) -> Result<(), CliError> {
        let failed = |error: std::io::Error| {
            CliError::Usage(format!(
                "cannot write the token file {}: {error}",
                self.path.display()
            ))
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(failed)?;
        }
        // Written beside the target and renamed over it: a reader never sees half a token,
        // and the file has its private mode from the moment it exists.
        let temporary = self.path.with_extension("tmp");
        let mut file = open_private(&temporary).map_err(failed)?;
        file.write_all(token.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(failed)?;
        drop(file);
        std::fs::rename(&temporary, &self.path).map_err(failed)
    }

    /// Forgets the token; whether there was one.
    pub fn remove(&self) -> Result<bool, CliError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(CliError::Usage(format!(
                "cannot remove the token file {}: {error}",
                self.path.display()
            ))),
        }
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A leftover temporary file keeps its old mode through `open`: set it again.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_token_is_read_back_and_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = TokenFile::new(dir.path().join("nested/token"));
        assert!(matches!(file.read(), Err(CliError::Usage(_))));
        file.write("abc.def.ghi").expect("write");
        assert_eq!(file.read().expect("read"), "abc.def.ghi");
        file.write("second").expect("overwrite");
        assert_eq!(file.read().expect("read"), "second");
        assert!(file.remove().expect("remove"));
        assert!(!file.remove().expect("remove again"));
        assert!(matches!(file.read(), Err(CliError::Usage(_))));
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_private_even_over_an_open_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        TokenFile::new(path.clone()).write("new").expect("write");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
