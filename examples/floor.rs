//! The floor for `make bench`: the smallest `lambda_http` function there is,
//! answering a constant body without touching anything. meshhook-health's
//! cold start and warm latency are measured against it in the same run.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"status":"healthy"}"#))
            .map_err(Error::from)
    }))
    .await
}
