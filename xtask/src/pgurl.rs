//! PostgreSQL connection URLs: where a `postgres://` URL points (host and
//! port) and how to print one without its password. Pure string handling;
//! no network access here.

/// The server address a connection URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgAddr {
    /// A host name, an IP address (IPv6 without brackets), or an absolute
    /// Unix-socket directory.
    pub host: String,
    pub port: u16,
}

impl PgAddr {
    /// True when the address is a Unix-socket directory rather than TCP.
    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// True when the server would be this machine's own TCP listener.
    pub fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "127.0.0.1" | "localhost" | "::1")
    }

    /// `host:port`, bracketing IPv6 literals so it can be connected to.
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

pub const DEFAULT_PORT: u16 = 5432;

/// Extracts host and port from `postgres://[user[:password]@][host][:port][/db][?params]`
/// (also `postgresql://`). `host=`/`port=` query parameters override the
/// authority, as libpq does; of several comma-separated hosts the first is
/// taken. A missing host means `localhost`.
pub fn parse(url: &str) -> Result<PgAddr, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| format!("not a postgres:// URL: {}", redact(url)))?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    let first = hosts.split(',').next().unwrap_or_default();

    let (mut host, mut port) =
        split_host_port(first).map_err(|e| format!("{e} in {}", redact(url)))?;
    for param in query.split('&') {
        match param.split_once('=') {
            Some(("host", value)) if !value.is_empty() => host = Some(percent_decode(value)),
            Some(("port", value)) if !value.is_empty() => {
                port = Some(parse_port(value).map_err(|e| format!("{e} in {}", redact(url)))?);
            }
            _ => {}
        }
    }
    Ok(PgAddr {
        host: host.unwrap_or_else(|| "localhost".to_owned()),
        port: port.unwrap_or(DEFAULT_PORT),
    })
}

/// Hides the password of a URL (`user:secret@` becomes `user:***@`) so that
/// it can be printed.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn split_host_port(hostport: &str) -> Result<(Option<String>, Option<u16>), String> {
    if hostport.is_empty() {
        return Ok((None, None));
    }
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in host".to_owned())?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after IPv6 host")),
            },
        }
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let host = (!host.is_empty()).then(|| percent_decode(host));
    let port = match port {
        Some(port) if !port.is_empty() => Some(parse_port(port)?),
        _ => None,
    };
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!("invalid port {text:?}")),
    }
}

/// Decodes `%XX` escapes (socket directories are written `%2Fvar%2Frun...`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: u16) -> PgAddr {
        PgAddr {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn parses_the_default_url() {
        assert_eq!(
            parse("postgres://postgres@127.0.0.1:5432/postgres"),
            Ok(addr("127.0.0.1", 5432))
        );
    }

    #[test]
    fn defaults_port_and_host() {
        assert_eq!(
            parse("postgresql://u:p@db.internal/app"),
            Ok(addr("db.internal", 5432))
        );
        assert_eq!(parse("postgres:///app"), Ok(addr("localhost", 5432)));
        assert_eq!(parse("postgres://"), Ok(addr("localhost", 5432)));
        assert_eq!(parse("postgres://user@:6000"), Ok(addr("localhost", 6000)));
    }

    #[test]
    fn password_with_at_sign_and_colons_does_not_confuse_the_host() {
        assert_eq!(
            parse("postgres://user:p@ss:w0rd@10.0.0.5:55432/db?sslmode=disable"),
            Ok(addr("10.0.0.5", 55432))
        );
    }

    #[test]
    fn parses_ipv6_and_multiple_hosts() {
        assert_eq!(parse("postgres://[::1]:5433/db"), Ok(addr("::1", 5433)));
        assert_eq!(parse("postgres://[::1]/db"), Ok(addr("::1", 5432)));
        assert_eq!(parse("postgres://a:1111,b:2222/db"), Ok(addr("a", 1111)));
        assert_eq!(addr("::1", 5433).socket_addr(), "[::1]:5433");
        assert_eq!(addr("127.0.0.1", 5433).socket_addr(), "127.0.0.1:5433");
    }

    #[test]
    fn query_parameters_override_the_authority() {
        let socket =
            parse("postgres://postgres@/postgres?host=%2Fvar%2Frun%2Fpostgresql&port=5433")
                .expect("valid URL");
        assert_eq!(socket, addr("/var/run/postgresql", 5433));
        assert!(socket.is_socket());
        assert!(!socket.is_loopback());
    }

    #[test]
    fn rejects_other_schemes_and_bad_ports() {
        assert!(parse("mysql://root@localhost/db").is_err());
        assert!(parse("postgres://h:notaport/db").is_err());
        assert!(parse("postgres://h:0/db").is_err());
        assert!(parse("postgres://h:70000/db").is_err());
        assert!(parse("postgres://[::1/db").is_err());
    }

    #[test]
    fn loopback_detection() {
        assert!(addr("127.0.0.1", 5432).is_loopback());
        assert!(addr("localhost", 5432).is_loopback());
        assert!(!addr("10.1.2.3", 5432).is_loopback());
    }

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact("postgres://user:secret@host:5432/db?x=1"),
            "postgres://user:***@host:5432/db?x=1"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
