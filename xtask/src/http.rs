//! A minimal HTTP/1.1 GET over `std::net::TcpStream`, enough to poll a
//! health endpoint. Not a client: no redirects, TLS or bodies.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Sends `GET path` to `addr` (`host:port`) and returns the status code.
pub fn get_status(addr: &str, path: &str, timeout: Duration) -> io::Result<u16> {
    let target = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no address for {addr}"),
        )
    })?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write, so that a server answering after the request line does not
    // see the rest of the headers arrive after it has closed.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: xtask\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    // The status line is all we need; read until its end or 1 KiB.
    let mut head = Vec::new();
    let mut buf = [0_u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    parse_status_line(text.lines().next().unwrap_or_default()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not an HTTP response: {:?}",
                text.lines().next().unwrap_or_default()
            ),
        )
    })
}

/// `HTTP/1.1 200 OK` → 200.
pub fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead as _, BufReader};
    use std::net::TcpListener;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(
            parse_status_line("HTTP/1.0 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(parse_status_line("HTTP/1.1 204"), Some(204));
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line("HTTP/1.1 2000 Nope"), None);
        assert_eq!(parse_status_line(""), None);
    }

    #[test]
    fn gets_the_status_from_a_real_socket() {
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
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .expect("write");
            request_line
        });
        let status = get_status(&addr, "/readyz", Duration::from_secs(5)).expect("status");
        assert_eq!(status, 503);
        assert_eq!(
            server.join().expect("server thread"),
            "GET /readyz HTTP/1.1\r\n"
        );
    }
}
