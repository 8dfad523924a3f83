//! Layered, typed settings for a service: code defaults, YAML files, a `.env` file and
//! environment variables, deserialized into the service's own structs with errors that name
//! the offending key.
//!
//! It must not keep a global configuration, mutate the process environment or print secrets:
//! the loaded value is handed to whoever needs it, and secret fields are
//! [`secrecy::SecretString`], whose `Debug` output is redacted.
//!
//! Layers, lowest first:
//!
//! 1. code defaults: the settings type's `Default`, serialized as a layer of its own, so a
//!    service's defaults of a platform section survive an override of one of its keys
//!    (secrets are `skip_serializing` and come from `#[serde(default)]` instead);
//! 2. `<dir>/<service>/base.yaml`;
//! 3. `<dir>/<service>/<environment>.yaml`, the environment coming from `APP_ENV`
//!    (default `development`); both files are optional;
//! 4. a `.env` file, parsed but never loaded into the process environment; only its
//!    `<PREFIX>__...` entries count;
//! 5. environment variables `<PREFIX>__SECTION__KEY`; a double underscore separates levels
//!    and keys are lower-cased (`ORDERS__DATABASE__MAX_CONNECTIONS` sets
//!    `database.max_connections`).
//!
//! ```no_run
//! # use platform::config::ConfigLoader;
//! #[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct Settings {
//!     name: String,
//! }
//!
//! let settings: Settings = ConfigLoader::new("orders", "ORDERS").load()?;
//! # Ok::<(), platform::config::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The variable naming the environment whose YAML file is layered over `base.yaml`.
pub const APP_ENV: &str = "APP_ENV";

/// The environment used when `APP_ENV` is not set.
pub const DEFAULT_ENVIRONMENT: &str = "development";

/// Separates the prefix and the levels of a key in environment variable names.
const SEPARATOR: &str = "__";

/// Why settings could not be loaded. Every variant names the file or the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `.env` file exists but could not be read or parsed.
    #[error("cannot read {}: {source}", path.display())]
    DotEnv {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: dotenvy::Error,
    },
    /// A YAML file exists but could not be read or parsed; the message names the file.
    #[error("cannot load configuration: {0}")]
    Source(#[source] config::ConfigError),
    /// A key that no settings struct declares, usually a typo.
    #[error("unknown key {key}{hint}")]
    UnknownKey {
        /// The full dotted path of the key, such as `kafka.brokrs`.
        key: String,
        /// The keys expected at that level, as `, expected ...`, or empty.
        hint: String,
    },
    /// A value is missing or of the wrong type.
    #[error("{key}: {message}")]
    Invalid {
        /// The full dotted path of the key, such as `database.max_connections`.
        key: String,
        /// What is wrong with it, and where it came from when known.
        message: String,
    },
}

/// Builds the layered configuration of one service and deserializes it into a settings type.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    service: String,
    env_prefix: String,
    dir: PathBuf,
    environment: Option<String>,
    dotenv_file: PathBuf,
    env_vars: Option<Vec<(String, String)>>,
}

impl ConfigLoader {
    /// A loader for `service` reading `config/<service>/*.yaml`, `.env` and the process
    /// environment, with variables named `<env_prefix>__SECTION__KEY`.
    pub fn new(service: &str, env_prefix: &str) -> Self {
        Self {
            service: service.to_owned(),
            env_prefix: env_prefix.to_owned(),
            dir: PathBuf::from("config"),
            environment: None,
            dotenv_file: PathBuf::from(".env"),
            env_vars: None,
        }
    }

    /// Reads the YAML files from `<dir>/<service>/` instead of `config/<service>/`.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Uses the environment `name` (its YAML file is `<name>.yaml`) whatever `APP_ENV` says.
    #[must_use]
    pub fn environment(mut self, name: &str) -> Self {
        self.environment = Some(name.to_owned());
        self
    }

    /// Reads `<PREFIX>__...` entries from this file instead of `.env`. A missing file is
    /// not an error.
    #[must_use]
    pub fn dotenv_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.dotenv_file = path.into();
        self
    }

    /// Uses these variables instead of the process environment, for `APP_ENV` as well as for
    /// the `<PREFIX>__...` layer. Tests use this because the process environment is shared
    /// and cannot be changed safely.
    #[must_use]
    pub fn env_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env_vars = Some(vars.into_iter().collect());
        self
    }

    /// Loads all layers and deserializes them into `T`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a file cannot be parsed, or a key is unknown, missing or has a
    /// value of the wrong type; the error names the file or the full key path.
    pub fn load<T: DeserializeOwned + Serialize + Default>(&self) -> Result<T, ConfigError> {
        let vars = self.vars();
        let environment = self
            .environment
            .clone()
            .or_else(|| vars.get(APP_ENV).cloned())
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
        let service_dir = self.dir.join(&self.service);

        // The code defaults are a layer of their own (not only serde's field defaults), so
        // that setting one key of a section keeps the service's defaults of the others:
        // `LABEL__CONSUMER__BATCH_LINGER` must not reset the label-service's
        // `consumer.batch_max_messages` to the platform's.
        let defaults = Config::try_from(&T::default()).map_err(ConfigError::Source)?;
        let config = Config::builder()
            .add_source(defaults)
            .add_source(yaml_file(&service_dir.join("base.yaml")))
            .add_source(yaml_file(&service_dir.join(format!("{environment}.yaml"))))
            .add_source(self.environment_source(self.dotenv_vars()?))
            .add_source(self.environment_source(self.prefixed(vars)))
            .build()
            .map_err(ConfigError::Source)?;

        serde_path_to_error::deserialize(config).map_err(|error| {
            let key = error.path().to_string();
            match unknown_key_hint(error.inner()) {
                Some(hint) => ConfigError::UnknownKey { key, hint },
                None => ConfigError::Invalid {
                    key,
                    message: describe(error.inner()),
                },
            }
        })
    }

    /// The variables the loader reads: the ones given, or the process environment. Variables
    /// whose name or value is not Unicode cannot be settings and are skipped.
    fn vars(&self) -> HashMap<String, String> {
        match &self.env_vars {
            Some(vars) => vars.iter().cloned().collect(),
            None => std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .collect(),
        }
    }

    /// The `<PREFIX>__...` entries of the `.env` file, or none when there is no such file.
    fn dotenv_vars(&self) -> Result<HashMap<String, String>, ConfigError> {
        let dotenv_error = |source| ConfigError::DotEnv {
            path: self.dotenv_file.clone(),
            source,
        };
        let entries = match dotenvy::from_path_iter(&self.dotenv_file) {
            Ok(entries) => entries,
            Err(error) if error.not_found() => return Ok(HashMap::new()),
            Err(error) => return Err(dotenv_error(error)),
        };
        let mut vars = HashMap::new();
        for entry in entries {
            let (name, value) = entry.map_err(dotenv_error)?;
            vars.insert(name, value);
        }
        Ok(self.prefixed(vars))
    }

    /// Keeps only the variables meant for this service, so that an unrelated variable can
    /// never reach the settings.
    fn prefixed(&self, vars: HashMap<String, String>) -> HashMap<String, String> {
        let prefix = format!("{}{SEPARATOR}", self.env_prefix).to_lowercase();
        vars.into_iter()
            .filter(|(name, _)| name.to_lowercase().starts_with(&prefix))
            .collect()
    }

    fn environment_source(&self, vars: HashMap<String, String>) -> Environment {
        Environment::with_prefix(&self.env_prefix)
            .prefix_separator(SEPARATOR)
            .separator(SEPARATOR)
            .source(Some(vars.into_iter().collect()))
    }
}

fn yaml_file(path: &Path) -> File<config::FileSourceFile, FileFormat> {
    File::from(path).format(FileFormat::Yaml).required(false)
}

/// The message of a deserialization error without the key, which the caller already has
/// from `serde_path_to_error`, but with the source of the value when `config` knows it.
fn describe(error: &config::ConfigError) -> String {
    match error {
        config::ConfigError::Type {
            origin,
            unexpected,
            expected,
            ..
        } => with_origin(
            format!("invalid type: {unexpected}, expected {expected}"),
            origin.as_deref(),
        ),
        config::ConfigError::At { error, origin, .. } => {
            with_origin(describe(error), origin.as_deref())
        }
        other => other.to_string(),
    }
}

/// Serde reports an unknown key as a message, `unknown field `x`, expected ...`; this returns
/// its `, expected ...` part when the error is one.
fn unknown_key_hint(error: &config::ConfigError) -> Option<String> {
    match error {
        config::ConfigError::At { error, .. } => unknown_key_hint(error),
        config::ConfigError::Message(message) => {
            let rest = message.strip_prefix("unknown field `")?;
            let hint = rest.split_once('`').map_or("", |(_, hint)| hint);
            Some(hint.to_owned())
        }
        _ => None,
    }
}

fn with_origin(message: String, origin: Option<&str>) -> String {
    match origin {
        Some(origin) => format!("{message} (from {origin})"),
        None => message,
    }
}
