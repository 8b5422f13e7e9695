//! Review findings where the C2C API leaves no clean fix: the library's answer is pinned down here.

mod common;
use common::Emulator;
use frameio_c2c::upload::{AssetSpec, Source, Upload, UploadOptions};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// CONNECT proxy that drops the 200 of the first PUT whose request line contains `needle`.
fn lossy_proxy(needle: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let dropped = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let dropped = dropped.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                if !target.starts_with("127.0.0.1:") {
                    return;
                }
                let up = TcpStream::connect(&target).unwrap();
                c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let armed = Arc::new(AtomicBool::new(false));
                let (mut c2, mut up2, armed2, dropped2) =
                    (c.try_clone().unwrap(), up.try_clone().unwrap(), armed.clone(), dropped.clone());
                let (c3, up3) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        let n = match up2.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if armed2.load(Ordering::SeqCst)
                            && buf[..n].windows(12).any(|w| w == b"HTTP/1.1 200")
                            && !dropped2.swap(true, Ordering::SeqCst)
                        {
                            let _ = c3.shutdown(Shutdown::Both);
                            let _ = up3.shutdown(Shutdown::Both);
                            return;
                        }
                        if c2.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c2.shutdown(Shutdown::Write);
                });
                let (mut c, mut up) = (c, up);
                let mut buf = [0u8; 65536];
                loop {
                    let n = match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let s = String::from_utf8_lossy(&buf[..n]);
                    if s.contains("PUT ") && s.contains(needle) {
                        armed.store(true, Ordering::SeqCst);
                    }
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = up.shutdown(Shutdown::Write);
            });
        }
    });
    format!("http://{addr}")
}

/// The 200 of the last part's PUT is lost (the connection drops after S3 answered): the emulator has
/// already completed the asset, byte-identical. The PUT is retried, S3 refuses the completed upload
/// (403 here; real S3 says 404 NoSuchUpload), the part is registered again, and that is refused with 400
/// "already complete". Claiming success from that 400 would lean on c2c-api.md 14.2 for data safety,
/// which section 14 forbids, and the C2C API has no call to ask whether an asset is complete: so finish
/// fails with FIO_ERR_BAD_REQUEST and a message saying the asset may already be complete, so firmware
/// does not blindly upload a duplicate.
#[test]
fn lost_200_on_the_last_part() {
    let emu = Emulator::start();
    let proxy = lossy_proxy("partNumber=1");
    let cfg = emu.config().with_proxy(proxy);
    let client = Arc::new(frameio_c2c::Client::new(cfg).unwrap());
    emu.pair(&client);
    let spec = AssetSpec {
        name: Some("lost.mp4".into()),
        filetype: "video/mp4".into(),
        offset: Some(0),
        ..Default::default()
    };
    let up = Upload::start(client, spec, Source::Bytes, UploadOptions::default()).unwrap();
    up.write(&common::test_bytes(1 << 20, 9)).unwrap();
    let r = up.finish();
    assert_eq!(emu.asset(up.asset_id())["state"], "uploaded", "the asset is complete");
    // Still an error (nothing can confirm completion), but one that says the clip may be complete.
    let e = r.expect_err("finish cannot confirm the asset");
    assert_eq!(e.kind, frameio_c2c::ErrorKind::BadRequest);
    assert!(e.message.contains("may already be complete"), "{}", e.message);
}
