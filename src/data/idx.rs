//! The IDX format (MNIST, Fashion-MNIST): a 4-byte magic (0, 0, type, rank), `rank` big-endian
//! u32 dimensions, then the data. Plain or gzipped. Only unsigned bytes (type 0x08) are
//! supported. A wrong magic, a truncated file or trailing bytes is an error, never a panic.

use std::io::Read;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct IdxError {
    pub message: String,
}

fn err(m: impl Into<String>) -> IdxError {
    IdxError { message: m.into() }
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

fn open(path: &Path) -> Result<Box<dyn Read>, IdxError> {
    super::csv::check_regular(path).map_err(|e| err(super::csv::io_message(&e)))?;
    let f = std::fs::File::open(path).map_err(|e| err(super::csv::io_message(&e)))?;
    let r = std::io::BufReader::new(f);
    Ok(if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// The dimensions in an IDX file's header, reading nothing past it.
pub fn header(path: &Path) -> Result<Vec<usize>, IdxError> {
    let mut r = open(path)?;
    read_header(&mut r)
}

fn read_header(r: &mut dyn Read) -> Result<Vec<usize>, IdxError> {
    let mut magic = [0u8; 4];
    read_exact(r, &mut magic, "the header")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(err(format!(
            "not an IDX file: it starts with bytes {:02x} {:02x}, not 00 00{}",
            magic[0],
            magic[1],
            if magic[0] == 0x1f && magic[1] == 0x8b {
                " (it is gzipped: name it `.gz`)"
            } else {
                ""
            }
        )));
    }
    if magic[2] != 0x08 {
        return Err(err(format!(
            "IDX element type 0x{:02x} is not supported; only unsigned bytes (0x08) are",
            magic[2]
        )));
    }
    let rank = magic[3] as usize;
    if rank == 0 {
        return Err(err("the IDX header declares zero dimensions"));
    }
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        let mut b = [0u8; 4];
        read_exact(r, &mut b, "the header")?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    Ok(dims)
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<(), IdxError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            err(format!("the file is truncated: it ends inside {what}"))
        } else {
            err(format!("cannot read {what}: {e}"))
        }
    })
}

/// A whole IDX file: its dimensions and every byte of data, validated against the header.
pub fn load(path: &Path) -> Result<(Vec<usize>, Vec<u8>), IdxError> {
    let mut r = open(path)?;
    let dims = read_header(&mut r)?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|n| *n <= (1 << 34))
        .ok_or_else(|| err(format!("the header declares an impossible size {dims:?}")))?;
    let mut data = Vec::with_capacity(count.min(1 << 28));
    let got = r
        .by_ref()
        .take(count as u64)
        .read_to_end(&mut data)
        .map_err(|e| err(format!("cannot read the data: {e}")))?;
    if got < count {
        return Err(err(format!(
            "the file is truncated: the header declares {} values ({}), but only {got} follow",
            count,
            dims.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" × ")
        )));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra)
        .map_err(|e| err(format!("cannot read the data: {e}")))?
        > 0
    {
        return Err(err("the file has bytes after the data its header declares"));
    }
    Ok((dims, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mlx-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_valid_files_and_rejects_broken_ones() {
        let mut ok = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        ok.extend([1, 2, 3, 4]);
        let p = write("ok.idx", &ok);
        assert_eq!(load(&p).unwrap(), (vec![2, 1, 2], vec![1, 2, 3, 4]));
        assert_eq!(header(&p).unwrap(), vec![2, 1, 2]);

        let p = write("short.idx", &ok[..ok.len() - 1]);
        assert!(load(&p).unwrap_err().message.contains("truncated"));
        let p = write("hdr.idx", &ok[..6]);
        assert!(
            header(&p)
                .unwrap_err()
                .message
                .contains("inside the header")
        );
        let mut bad = ok.clone();
        bad[0] = 7;
        let p = write("magic.idx", &bad);
        assert!(load(&p).unwrap_err().message.contains("not an IDX file"));
        let mut long = ok.clone();
        long.push(9);
        let p = write("long.idx", &long);
        assert!(load(&p).unwrap_err().message.contains("after the data"));
        let p = write("f32.idx", &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(load(&p).unwrap_err().message.contains("not supported"));
        assert!(
            load(Path::new("/nonexistent/x.idx"))
                .unwrap_err()
                .message
                .contains("does not exist")
        );
    }
}
