//! Test harness: runs the real `vaultctl` binary in an isolated temporary
//! environment, against a local-disk target and (optionally) a real
//! S3-compatible server (`s3s-fs`) listening on 127.0.0.1.

#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_vaultctl");
pub const ACCESS_KEY: &str = "vaultctltestak";
pub const SECRET_KEY: &str = "vaultctltestsecretkey";
pub const BUCKET: &str = "bkt";
pub const PREFIX: &str = "repo";

/// Finds `s3s-fs`: `$S3S_FS`, then `PATH`, then `~/.cargo/bin/s3s-fs`.
/// Panics (failing the test) when it cannot be found.
pub fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("S3S_FS").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "S3S_FS={} does not name an existing file (the S3 test server s3s-fs)",
            p.display()
        );
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("s3s-fs");
            if c.is_file() {
                return c;
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let c = PathBuf::from(home).join(".cargo/bin/s3s-fs");
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "the S3-compatible test server `s3s-fs` was not found (looked at $S3S_FS, $PATH and ~/.cargo/bin/s3s-fs). \
         Install it with `cargo install s3s-fs --features binary` or run scripts/test.sh, which installs it."
    );
}

/// A running `s3s-fs` server; killed on drop.
pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    /// The server's root directory; the bucket is `root/BUCKET`.
    pub root: PathBuf,
    log: PathBuf,
}

/// Starts `s3s-fs` on `port`; `None` when it exits or does not listen in time.
fn spawn_s3s_fs(root: &Path, port: u16, log: &Path) -> Option<Child> {
    let bin = s3s_fs_binary();
    let logf = std::fs::File::create(log).unwrap();
    let mut child = Command::new(&bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
        ])
        .arg(root)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None; // probably lost the port race
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl S3Server {
    pub fn start(root: &Path) -> S3Server {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let log = root.with_extension("log");
        for _attempt in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_s3s_fs(root, port, &log) {
                return S3Server {
                    child: Some(child),
                    port,
                    root: root.to_path_buf(),
                    log,
                };
            }
        }
        panic!(
            "s3s-fs did not start; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Starts the server again on the same port and root (after `stop`).
    pub fn restart(&mut self) {
        self.stop();
        for _attempt in 0..20 {
            if let Some(child) = spawn_s3s_fs(&self.root, self.port, &self.log) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "s3s-fs did not restart on port {}; its log:\n{}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory that holds the repository objects on the server.
    pub fn repo_dir(&self) -> PathBuf {
        self.root.join(BUCKET).join(PREFIX)
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a finished `vaultctl` run produced.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout_str(),
                self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout_str(),
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Out {
        Out {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Options for the config file.
#[derive(Clone)]
pub struct ConfigOpts {
    /// Write `identity_file` (the test identity).
    pub identity: bool,
    /// Write `recipients`.
    pub recipients: bool,
    pub s3: bool,
    pub local: bool,
    pub catalog: Option<PathBuf>,
    pub extra: String,
}

impl Default for ConfigOpts {
    fn default() -> Self {
        // Small packs, so modest test data still spans several packs.
        ConfigOpts {
            identity: true,
            recipients: true,
            s3: true,
            local: true,
            catalog: None,
            extra: "pack_size_mib = 2\n".into(),
        }
    }
}

/// An isolated test environment: temp dir, HOME/XDG dirs, keys, config,
/// and optionally a running S3 server.
pub struct Env {
    pub dir: TempDir,
    pub s3: Option<S3Server>,
    pub config: PathBuf,
    pub recipient: String,
}

impl Env {
    /// Local target only, initialized.
    pub fn local() -> Env {
        Env::build(false, true)
    }

    /// Local and S3 targets, initialized.
    pub fn with_s3() -> Env {
        Env::build(true, true)
    }

    /// Local target only, not initialized.
    pub fn local_uninit() -> Env {
        Env::build(false, false)
    }

    fn build(s3: bool, init: bool) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("vaultctl-it-")
            .tempdir()
            .unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for d in ["home", "xdg-config", "xdg-data", "data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let s3 = if s3 {
            Some(S3Server::start(&root.join("s3")))
        } else {
            None
        };
        let mut env = Env {
            dir,
            s3,
            config: root.join("config.toml"),
            recipient: String::new(),
        };
        let out = env.run_raw(&[
            "key",
            "generate",
            "--output",
            env.path("id.txt").to_str().unwrap(),
        ]);
        out.ok();
        env.recipient = out.stdout_str().trim().to_string();
        assert!(
            env.recipient.starts_with("age1"),
            "key generate printed {:?}",
            env.recipient
        );
        let text = env.config_text(&ConfigOpts {
            s3: env.s3.is_some(),
            ..Default::default()
        });
        std::fs::write(&env.config, text).unwrap();
        if init {
            env.run(&["init"]).ok();
        }
        env
    }

    /// The canonical temp root.
    pub fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn local_repo(&self) -> PathBuf {
        self.path("local")
    }

    pub fn s3(&mut self) -> &mut S3Server {
        self.s3.as_mut().expect("this environment has no S3 server")
    }

    /// A config file's text for this environment.
    pub fn config_text(&self, o: &ConfigOpts) -> String {
        let catalog = o.catalog.clone().unwrap_or_else(|| self.path("catalog.db"));
        let mut t = format!("catalog = \"{}\"\n", catalog.display());
        t.push_str(&o.extra);
        t.push_str("\n[keys]\n");
        if o.identity {
            t.push_str(&format!(
                "identity_file = \"{}\"\n",
                self.path("id.txt").display()
            ));
        }
        if o.recipients {
            t.push_str(&format!("recipients = [\"{}\"]\n", self.recipient));
        }
        t.push_str(&format!(
            "dedup_key_file = \"{}\"\n",
            self.path("dedup.key").display()
        ));
        if o.local {
            t.push_str(&format!(
                "\n[[target]]\nname = \"local\"\nurl = \"file://{}\"\n",
                self.local_repo().display()
            ));
        }
        if o.s3 {
            let port = self.s3.as_ref().expect("s3 target without server").port;
            t.push_str(&format!(
                "\n[[target]]\nname = \"s3\"\nurl = \"s3://{BUCKET}/{PREFIX}\"\nendpoint = \"http://127.0.0.1:{port}\"\nregion = \"us-east-1\"\n\
                 access_key_id_env = \"T_AK\"\nsecret_access_key_env = \"T_SK\"\nallow_http = true\nmax_retries = 2\n\
                 retry_timeout = \"5s\"\nrequest_timeout = \"10s\"\n"
            ));
        }
        t
    }

    /// Writes another config file into the temp dir and returns its path.
    pub fn write_config(&self, name: &str, o: &ConfigOpts) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, self.config_text(o)).unwrap();
        p
    }

    /// A `vaultctl` command with the isolated environment and no `--config`.
    pub fn command_raw(&self) -> Command {
        let root = self.root();
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().to_string();
            if k.starts_with("VAULTCTL_")
                || k.starts_with("AWS_")
                || k == "RUST_LOG"
                || k == "NO_COLOR"
            {
                c.env_remove(&k);
            }
        }
        c.env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("xdg-config"))
            .env("XDG_DATA_HOME", root.join("xdg-data"))
            .env("T_AK", ACCESS_KEY)
            .env("T_SK", SECRET_KEY)
            .current_dir(&root)
            .stdin(Stdio::null());
        c
    }

    /// A `vaultctl --config FILE --no-progress` command.
    pub fn command(&self) -> Command {
        self.command_with(&self.config)
    }

    pub fn command_with(&self, config: &Path) -> Command {
        let mut c = self.command_raw();
        c.arg("--config").arg(config).arg("--no-progress");
        c
    }

    pub fn run_raw(&self, args: &[&str]) -> Out {
        self.command_raw()
            .args(args)
            .output()
            .expect("run vaultctl")
            .into()
    }

    /// Runs `vaultctl --config FILE --no-progress ARGS`.
    pub fn run(&self, args: &[&str]) -> Out {
        self.command()
            .args(args)
            .output()
            .expect("run vaultctl")
            .into()
    }

    pub fn run_with(&self, config: &Path, args: &[&str]) -> Out {
        self.command_with(config)
            .args(args)
            .output()
            .expect("run vaultctl")
            .into()
    }

    /// `backup ... --json`: returns the outcome object (asserts exit 0).
    pub fn backup_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json", "backup"];
        a.extend_from_slice(args);
        let out = self.run(&a);
        out.ok();
        out.json()
    }

    /// `list --json` as an array.
    pub fn list(&self) -> Vec<serde_json::Value> {
        self.list_with(&self.config, &[])
    }

    pub fn list_with(&self, config: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut a = vec!["--json", "list"];
        a.extend_from_slice(extra);
        let out = self.run_with(config, &a);
        out.ok();
        out.json()
            .as_array()
            .expect("list --json is an array")
            .clone()
    }

    pub fn row(&self, id: &str) -> serde_json::Value {
        self.list()
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("backup {id} is not in list --json"))
    }

    /// Restores a stream backup with `--stdout` into a file; returns the run.
    pub fn restore_stdout_to(&self, args: &[&str], file: &Path) -> Out {
        let f = std::fs::File::create(file).unwrap();
        let out = self
            .command()
            .arg("restore")
            .args(args)
            .arg("--stdout")
            .stdout(Stdio::from(f))
            .output()
            .expect("run vaultctl");
        out.into()
    }
}

/// Names of the objects under `dir/snapshots` (empty when it does not exist).
pub fn snapshots(repo_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(repo_dir.join("snapshots")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Every regular file under `repo_dir/packs`.
pub fn pack_files(repo_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(repo_dir.join("packs")) else {
        return out;
    };
    for d in rd {
        let d = d.unwrap().path();
        if d.is_dir() {
            for f in std::fs::read_dir(&d).unwrap() {
                let f = f.unwrap().path();
                if f.is_file() {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

/// Deterministic pseudo-random bytes (xorshift64*), incompressible.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` deterministic pseudo-random bytes to `path` in chunks.
pub fn write_pseudo_random_file(path: &Path, seed: u64, len: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    let mut s = seed;
    while left > 0 {
        let n = left.min(4 << 20);
        f.write_all(&pseudo_random(s, n)).unwrap();
        s += 1;
        left -= n;
    }
    f.flush().unwrap();
}

/// True when two files have identical bytes (streamed, for big files).
pub fn same_file_bytes(a: &Path, b: &Path) -> bool {
    let (ma, mb) = (std::fs::metadata(a).unwrap(), std::fs::metadata(b).unwrap());
    if ma.len() != mb.len() {
        return false;
    }
    let mut fa = std::io::BufReader::new(std::fs::File::open(a).unwrap());
    let mut fb = std::io::BufReader::new(std::fs::File::open(b).unwrap());
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let n = read_full(&mut fa, &mut ba);
        let m = read_full(&mut fb, &mut bb);
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Waits until `path` exists (or panics after `timeout`).
pub fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sorts a `list --json` array by id.
pub fn sorted_by_id(mut v: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    v
}

pub fn str_array(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Sets a file's (or directory's) mtime, in whole seconds since the epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    let f = std::fs::File::open(path).unwrap();
    f.set_modified(t).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// True when the tests run as root (a file we create is owned by uid 0).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(std::env::temp_dir()).is_ok() && {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().metadata().unwrap().uid() == 0
    }
}

/// Builds a small tree with several modes, mtimes, symlinks and an empty
/// directory under `root` (which must not exist).
pub fn make_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("sub/dir")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    std::fs::write(root.join("a.txt"), "hello, vaultctl\n").unwrap();
    std::fs::write(root.join("bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::write(root.join("secret"), "s3cr3t").unwrap();
    std::fs::write(root.join("big.bin"), pseudo_random(7, 300_000)).unwrap();
    std::fs::write(root.join("sub/dir/nested.txt"), "nested\n".repeat(1000)).unwrap();
    std::fs::write(root.join("empty-file"), "").unwrap();
    symlink("a.txt", root.join("link-rel")).unwrap();
    symlink("/etc/hostname", root.join("link-abs")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink("../../bin", root.join("sub/dir/up")).unwrap();
    set_mode(&root.join("a.txt"), 0o644);
    set_mode(&root.join("bin/run.sh"), 0o755);
    set_mode(&root.join("secret"), 0o600);
    set_mode(&root.join("big.bin"), 0o640);
    set_mode(&root.join("sub/dir/nested.txt"), 0o444);
    set_mode(&root.join("empty-file"), 0o664);
    set_mode(&root.join("emptydir"), 0o700);
    set_mode(&root.join("bin"), 0o750);
    let files = [
        "a.txt",
        "bin/run.sh",
        "secret",
        "big.bin",
        "sub/dir/nested.txt",
        "empty-file",
    ];
    for (i, f) in files.iter().enumerate() {
        set_mtime(&root.join(f), 1_500_000_000 + i as u64 * 1000);
    }
    // Directories last, deepest first, so creating children does not touch them.
    for (i, d) in ["sub/dir", "sub", "bin", "emptydir", ""].iter().enumerate() {
        set_mtime(&root.join(d), 1_400_000_000 + i as u64 * 777);
    }
}

/// Asserts that `actual` holds the same tree as `expected`: names, types,
/// contents, permission bits, symlink targets and mtimes (seconds).
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::symlink_metadata(expected).unwrap();
    let ma = std::fs::symlink_metadata(actual)
        .unwrap_or_else(|e| panic!("{} is missing after restore: {e}", actual.display()));
    assert_eq!(
        me.file_type(),
        ma.file_type(),
        "file type of {}",
        actual.display()
    );
    if me.file_type().is_symlink() {
        assert_eq!(
            std::fs::read_link(expected).unwrap(),
            std::fs::read_link(actual).unwrap(),
            "symlink target of {}",
            actual.display()
        );
        return;
    }
    assert_eq!(
        me.mode() & 0o7777,
        ma.mode() & 0o7777,
        "mode of {}",
        actual.display()
    );
    assert_eq!(me.mtime(), ma.mtime(), "mtime of {}", actual.display());
    if me.is_file() {
        assert_eq!(
            std::fs::read(expected).unwrap(),
            std::fs::read(actual).unwrap(),
            "contents of {}",
            actual.display()
        );
    } else if me.is_dir() {
        let names = |p: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let ne = names(expected);
        assert_eq!(ne, names(actual), "entries of {}", actual.display());
        for n in ne {
            assert_same_tree(&expected.join(&n), &actual.join(&n));
        }
    }
}

/// Where `restore --to DIR` puts the absolute path `src`.
pub fn restored_path(dir: &Path, src: &Path) -> PathBuf {
    dir.join(src.strip_prefix("/").unwrap())
}

/// Builds a tar with python3's tarfile module. Helpers: `f(name, data)`
/// file, `d(name)` directory, `l(name, target)` symlink, `h(name, target)`
/// hard link, `dev(name, type)` device node or FIFO.
pub fn python_tar(path: &Path, body: &str, pax: bool) {
    let script = format!(
        "import tarfile, io, sys\nt = tarfile.open(sys.argv[1], 'w', format=tarfile.{})\n\
         def f(name, data=b'evil'):\n    i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644; t.addfile(i, io.BytesIO(data))\n\
         def d(name):\n    i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)\n\
         def l(name, target):\n    i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)\n\
         def h(name, target):\n    i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE; i.linkname = target; t.addfile(i)\n\
         def dev(name, kind):\n    i = tarfile.TarInfo(name); i.type = kind; i.mode = 0o666; i.devmajor = 1; i.devminor = 3; t.addfile(i)\n\
         {body}\nt.close()\n",
        if pax { "PAX_FORMAT" } else { "USTAR_FORMAT" }
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(path)
        .output()
        .expect("python3 is needed to craft archives");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTP proxy on 127.0.0.1 in front of an S3 server that refuses every
/// delete (`DELETE`, and the multi-object `POST ?delete`) with S3's
/// `403 AccessDenied`, the way a bucket under Object Lock retention or
/// append-only credentials answers, and passes everything else through
/// byte for byte (so the SigV4 signatures stay valid). One request per
/// connection: it asks both sides to close after each answer.
pub struct DeleteRefusingProxy {
    pub port: u16,
    pub refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DeleteRefusingProxy {
    pub fn start(upstream_port: u16) -> DeleteRefusingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = refused.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(client, upstream_port, &counter);
                });
            }
        });
        DeleteRefusingProxy { port, refused }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Forwards one request of `client` (refusing deletes) and the answer.
fn proxy_one(
    mut client: TcpStream,
    upstream_port: u16,
    refused: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("connection") {
                continue;
            }
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let request_line =
        String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\n').unwrap_or(0)])
            .to_string();
    let is_delete = request_line.starts_with("DELETE ")
        || (request_line.starts_with("POST ") && request_line.contains("?delete"));
    if is_delete {
        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied: object is WORM protected</Message></Error>";
        write!(
            client,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return client.flush();
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.write_all(&head)?;
    upstream.write_all(&body)?;
    std::io::copy(&mut upstream, &mut client)?;
    client.flush()
}
