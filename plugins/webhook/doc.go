// Package webhook is the driftd sink that delivers retrain jobs over HTTP:
// a signed JSON POST to any URL, or, through a preset, a run of an Airflow
// DAG, an Argo WorkflowTemplate or a Kubeflow pipeline. README.md documents
// the config, the body, the headers and the retry rules; this is a summary.
//
// # Requests
//
// Every job becomes one POST with Content-Type application/json and the
// headers X-Driftd-Id and Idempotency-Key (the job ID, the same on every
// attempt), X-Driftd-Kind and X-Driftd-Timestamp. With a secret the raw body
// is signed as GitHub signs webhooks:
//
//	X-Driftd-Signature: sha256=<hex HMAC-SHA256(secret, body)>
//
// Receivers check it with Verify, or with the few lines README.md shows.
//
// The body is the sdk.Job as JSON, the output of a text/template, or, with a
// preset, the request the service's API expects:
//
//	airflow   POST {url}/api/v1/dags/{dag_id}/dagRuns   {"dag_run_id": id, "conf": job}
//	argo      POST {url}/api/v1/workflows/{namespace}/submit
//	          (WorkflowTemplate, workflow named after the job, parameter job=<job JSON>)
//	kubeflow  POST {url}/apis/v2beta1/runs   (display_name id, runtime parameter job=<job JSON>)
//
// Recovered jobs are acknowledged without a request, unless the webhook
// preset has send_recovered = true.
//
// # Answers
//
// 2xx is delivered. 408, 429, 5xx, timeouts and connection failures are
// retried by the daemon, after the Retry-After of a 429 or 503 when there is
// one. Other answers are permanent failures, except 409 for the presets: the
// run named after the job exists, so an earlier attempt got through.
// Redirects are not followed.
package webhook
