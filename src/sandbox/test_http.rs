//! For the sandbox's own tests: a response read whole, whatever its status.

use reqwest::StatusCode;
use serde_json::Value;

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body, or the text as a JSON string when it is not JSON.
    pub body: Value,
}

/// Send `req` and read the whole response.
pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        headers,
        body,
    }
}
