//! Waiting for the new server: running, not restarting, and `/ping` answering `pong`.

use crate::argv::Argv;
use crate::engine::Engine;
use crate::interrupt;
use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// How often `/ping` is asked: the downtime ends at the first `pong`, so ask often at first;
/// past `PING_OFTEN_FOR`, a slow migration is asked once a second (each ask through the
/// engine is a container exec).
const PING_EVERY: Duration = Duration::from_millis(100);
const PING_OFTEN_FOR: Duration = Duration::from_secs(30);
const PING_SLOWLY: Duration = Duration::from_secs(1);
/// How often the container's state is read: each read is a docker call.
const STATE_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `docker inspect --format '{{json .State}}'`, the parts that matter here.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub running: bool,
    #[serde(default)]
    pub restarting: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub started_at: String,
}

impl ContainerState {
    /// Whether the container was ever started: a created one has the zero time (docker and
    /// podman alike).
    pub fn ever_started(&self) -> bool {
        !self.started_at.is_empty() && !self.started_at.starts_with("0001-01-01")
    }
}

pub fn container_state(engine: &Engine, container: &str) -> Result<ContainerState> {
    let json = engine.read_ok(&engine.inspect_container_field("{{json .State}}", container))?;
    serde_json::from_str(json.trim())
        .with_context(|| format!("reading the state of {container}: {json}"))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Healthy {
        after: Duration,
    },
    /// The container stopped: a failure at once, not after the timeout.
    Exited {
        status: String,
        exit_code: i64,
    },
    /// It restarted (a crash loop under a restart policy).
    Restarted,
    TimedOut {
        last_answer: String,
    },
    Interrupted,
}

impl Verdict {
    pub fn describe(&self, container: &str, url: &str) -> String {
        match self {
            Verdict::Healthy { after } => {
                format!(
                    "{container} answers {url} after {:.1} s",
                    after.as_secs_f64()
                )
            }
            Verdict::Exited { status, exit_code } => {
                format!(
                    "{container} stopped ({status}, exit code {exit_code}) before answering {url}"
                )
            }
            Verdict::Restarted => {
                format!("{container} restarted before answering {url}: it is crash-looping")
            }
            Verdict::TimedOut { last_answer } => format!(
                "{container} did not answer as awaited at {url} in time; the last answer was: {last_answer}"
            ),
            Verdict::Interrupted => format!("the wait for {url} was interrupted"),
        }
    }
}

/// Asks `/ping` from this machine: for `--health-url`.
pub fn http_asker(url: &str) -> impl FnMut() -> Result<String> + use<> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(PING_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let url = url.to_string();
    move || ping(&agent, &url)
}

/// Asks `/ping` with a command that runs inside the container, through the engine: its
/// output is the answer.
pub fn engine_asker<'a>(engine: &'a Engine, ask: &'a Argv) -> impl FnMut() -> Result<String> + 'a {
    move || {
        let finished = engine.read(ask)?;
        if finished.success {
            Ok(finished.stdout)
        } else {
            Err(anyhow!("{} ({})", finished.stderr.trim(), finished.status))
        }
    }
}

/// One GET of the health URL: the body, or why there is none.
fn ping(agent: &ureq::Agent, url: &str) -> Result<String> {
    let mut response = agent.get(url).call().map_err(|e| anyhow!("{e}"))?;
    let status = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| anyhow!("{e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(anyhow!("HTTP {status}: {}", body.trim()))
    }
}

/// Waits until `ask`'s answer is one `accepts` takes (`pong`), the container stops, it
/// restarts, or `timeout` passes. `state` reads the container's state; `tick` hears the
/// elapsed time.
pub fn wait_until_healthy(
    mut ask: impl FnMut() -> Result<String>,
    accepts: impl Fn(&str) -> bool,
    timeout: Duration,
    mut state: impl FnMut() -> Result<ContainerState>,
    mut tick: impl FnMut(Duration),
) -> Result<Verdict> {
    let started = Instant::now();
    let first = state()?;
    let mut last_state_read = started;
    let mut current = first.clone();
    loop {
        if !current.running {
            return Ok(Verdict::Exited {
                status: current.status,
                exit_code: current.exit_code,
            });
        }
        if current.restarting || current.started_at != first.started_at {
            return Ok(Verdict::Restarted);
        }
        let last_answer = match ask() {
            Ok(body) if accepts(&body) => {
                return Ok(Verdict::Healthy {
                    after: started.elapsed(),
                });
            }
            Ok(body) => format!("{:?}", body.chars().take(80).collect::<String>()),
            Err(error) => error.to_string(),
        };
        if interrupt::requested() {
            return Ok(Verdict::Interrupted);
        }
        if started.elapsed() >= timeout {
            return Ok(Verdict::TimedOut { last_answer });
        }
        tick(started.elapsed());
        std::thread::sleep(if started.elapsed() < PING_OFTEN_FOR {
            PING_EVERY
        } else {
            PING_SLOWLY
        });
        if last_state_read.elapsed() >= STATE_EVERY {
            last_state_read = Instant::now();
            current = state()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    fn pong(answer: &str) -> bool {
        crate::plan::Expect::Pong.accepts(answer)
    }

    fn running() -> ContainerState {
        ContainerState {
            running: true,
            restarting: false,
            status: "running".into(),
            exit_code: 0,
            started_at: "t0".into(),
        }
    }

    /// A real HTTP listener on a free loopback port that answers every request with `body`,
    /// starting `delay` after the test begins (before that the port refuses connections).
    fn serve(body: &'static str, delay: Duration) -> String {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        thread::spawn(move || {
            thread::sleep(delay);
            let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://127.0.0.1:{port}/ping")
    }

    /// The wait for `url` on a container that keeps running.
    fn wait_while_running(url: &str, timeout: Duration) -> Verdict {
        wait_until_healthy(http_asker(url), pong, timeout, || Ok(running()), |_| {}).unwrap()
    }

    #[test]
    fn pong_is_healthy() {
        let url = serve("pong\n", Duration::ZERO);
        let verdict = wait_while_running(&url, Duration::from_secs(10));
        assert!(matches!(verdict, Verdict::Healthy { .. }), "{verdict:?}");
    }

    #[test]
    fn a_wrong_body_is_not_healthy_and_is_reported() {
        let url = serve("<html>starting</html>", Duration::ZERO);
        let verdict = wait_while_running(&url, Duration::from_millis(500));
        match verdict {
            Verdict::TimedOut { last_answer } => assert!(last_answer.contains("starting")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_connection_is_retried_until_the_server_listens() {
        let url = serve("pong\n", Duration::from_millis(700));
        let verdict = wait_while_running(&url, Duration::from_secs(10));
        match verdict {
            Verdict::Healthy { after } => assert!(after >= Duration::from_millis(600), "{after:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_container_that_exits_fails_at_once_not_after_the_timeout() {
        let url = serve("not yet", Duration::ZERO);
        let mut reads = 0;
        let started = Instant::now();
        let verdict = wait_until_healthy(
            http_asker(&url),
            pong,
            Duration::from_secs(600),
            || {
                reads += 1;
                Ok(if reads == 1 {
                    running()
                } else {
                    ContainerState {
                        running: false,
                        status: "exited".into(),
                        exit_code: 3,
                        ..running()
                    }
                })
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(
            verdict,
            Verdict::Exited {
                status: "exited".into(),
                exit_code: 3
            }
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn a_restart_is_a_crash_loop() {
        let url = serve("not yet", Duration::ZERO);
        let mut reads = 0;
        let verdict = wait_until_healthy(
            http_asker(&url),
            pong,
            Duration::from_secs(600),
            || {
                reads += 1;
                Ok(ContainerState {
                    started_at: format!("t{}", reads.min(2)),
                    ..running()
                })
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(verdict, Verdict::Restarted);
    }
}
