//! The naive handler for `make bench`: a `lambda_http` function that
//! connects to `DATABASE_URL` on its first request (tokio-postgres, no TLS:
//! the bench's database is on loopback), keeps the connection, and answers
//! `SELECT 1` — what one would write in an afternoon. meshhook-health's cold
//! first answer and warm answer are measured against it in the same run.

use lambda_http::{service_fn, Body, Error, Request, Response};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

static CLIENT: Mutex<Option<Client>> = Mutex::const_new(None);

async fn select_1() -> Result<(), Error> {
    let mut client = CLIENT.lock().await;
    if client.as_ref().is_none_or(Client::is_closed) {
        let url = std::env::var("DATABASE_URL")?;
        let (connected, connection) = tokio_postgres::connect(&url, NoTls).await?;
        tokio::spawn(connection);
        *client = Some(connected);
    }
    if let Some(client) = client.as_ref() {
        client.simple_query("SELECT 1").await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        let (status, body) = match select_1().await {
            Ok(()) => (200, r#"{"status":"healthy"}"#),
            Err(_) => (500, r#"{"status":"unhealthy"}"#),
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .map_err(Error::from)
    }))
    .await
}
