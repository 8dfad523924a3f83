//! Polling a health endpoint: the status code of one `GET`, with `ureq` (plain HTTP only,
//! no redirects followed, one overall timeout).

use std::time::Duration;

/// Sends `GET path` to `addr` (`host:port`) and returns the status code, whatever it is.
pub fn get_status(addr: &str, path: &str, timeout: Duration) -> Result<u16, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let response = agent.get(format!("http://{addr}{path}")).call()?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::TcpListener;

    /// A one-shot server that answers `answer` and returns the request line it got.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("read");
            // Read the headers too, so closing does not reset the connection.
            let mut header = String::new();
            while reader.read_line(&mut header).expect("read") > 0 && header != "\r\n" {
                header.clear();
            }
            let mut stream = reader.into_inner();
            stream.write_all(answer).expect("write");
            request_line
        });
        (addr, server)
    }

    #[test]
    fn gets_the_status_from_a_real_socket() {
        let (addr, server) =
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        let status = get_status(&addr, "/readyz", Duration::from_secs(5)).expect("status");
        assert_eq!(status, 503);
        assert_eq!(
            server.join().expect("server thread"),
            "GET /readyz HTTP/1.1\r\n"
        );
    }

    #[test]
    fn what_is_not_http_is_an_error() {
        let (addr, server) = serve_once(b"SSH-2.0-OpenSSH_9.2\r\n");
        assert!(get_status(&addr, "/readyz", Duration::from_secs(5)).is_err());
        server.join().expect("server thread");
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        assert!(get_status(&addr, "/readyz", Duration::from_secs(2)).is_err());
    }
}
