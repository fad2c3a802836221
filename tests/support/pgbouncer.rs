//! A real PgBouncer in transaction mode in front of a test cluster, set up
//! the way Supabase's Supavisor port 6543 behaves: several server
//! connections and round-robin, so consecutive transactions land on
//! different backends.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::postgres::{chown_to_server_user, command, free_port, Postgres};

pub struct PgBouncer {
    dir: PathBuf,
    pub port: u16,
    child: Child,
}

fn binary() -> PathBuf {
    for candidate in [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ] {
        if std::path::Path::new(candidate).is_file() {
            return candidate.into();
        }
    }
    panic!("pgbouncer not found: install it (Debian: apt-get install pgbouncer; .ci/run does)");
}

impl PgBouncer {
    pub fn start(pg: &Postgres, server_connections: u32) -> PgBouncer {
        Self::start_with(pg, server_connections, 200)
    }

    /// With at most `max_client_conn` clients; PgBouncer refuses the next
    /// login with "no more connections allowed (max_client_conn)".
    pub fn start_with(pg: &Postgres, server_connections: u32, max_client_conn: u32) -> PgBouncer {
        let dir = std::env::temp_dir().join(format!(
            "meshhook-health-pgbouncer-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        chown_to_server_user(&dir);
        let port = free_port();
        let userlist = dir.join("userlist.txt");
        std::fs::write(&userlist, "\"postgres\" \"\"\n").unwrap();
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={pg_port}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {userlist}\npool_mode = transaction\n\
                 server_round_robin = 1\ndefault_pool_size = {n}\nmin_pool_size = {n}\n\
                 max_client_conn = {max_client_conn}\n",
                pg_port = pg.port(),
                userlist = userlist.display(),
                n = server_connections,
            ),
        )
        .unwrap();
        for f in [&userlist, &ini] {
            chown_to_server_user(f);
        }
        let log = std::fs::File::create(dir.join("pgbouncer.log")).unwrap();
        let child = command(binary())
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pgbouncer");
        super::wait::eventually_blocking("pgbouncer listening", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map_err(|_| std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default())
        });
        PgBouncer { dir, port, child }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
