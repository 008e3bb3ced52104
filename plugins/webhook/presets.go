package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/driftd/driftd/sdk"
)

// The presets: what the request looks like and where it goes.
const (
	// PresetWebhook POSTs the job as JSON, or the template's output, to url.
	PresetWebhook = "webhook"
	// PresetAirflow triggers a DAG run through Airflow 2's stable REST API.
	PresetAirflow = "airflow"
	// PresetArgo submits a workflow from a WorkflowTemplate through the Argo
	// Server's API.
	PresetArgo = "argo"
	// PresetKubeflow creates a run through the Kubeflow Pipelines v2beta1 API.
	PresetKubeflow = "kubeflow"
)

// presetAttrs lists the attributes that belong to one preset, with whether
// the preset requires them. Giving one with another preset is an error.
var presetAttrs = map[string][]struct {
	name     string
	required bool
	check    func(string) error // nil: any non-empty string
}{
	PresetAirflow:  {{"dag_id", true, checkDagID}},
	PresetArgo:     {{"namespace", true, checkDNSLabel}, {"workflow_template", true, checkDNSSubdomain}},
	PresetKubeflow: {{"pipeline_id", true, nil}, {"pipeline_version_id", true, nil}, {"experiment_id", false, nil}},
}

// airflowDagRun is the body of POST /api/v1/dags/{dag_id}/dagRuns. Airflow
// answers 409 when a run with dag_run_id exists. logical_date is left out:
// Airflow sets it to the time of the request.
type airflowDagRun struct {
	DagRunID string  `json:"dag_run_id"`
	Conf     sdk.Job `json:"conf"`
}

// argoSubmit is the body of POST /api/v1/workflows/{namespace}/submit
// (WorkflowSubmitRequest). The Argo Server answers 409 when a workflow
// called submitOptions.name exists.
type argoSubmit struct {
	Namespace     string         `json:"namespace"`
	ResourceKind  string         `json:"resourceKind"`
	ResourceName  string         `json:"resourceName"`
	SubmitOptions argoSubmitOpts `json:"submitOptions"`
}

// argoSubmitOpts is Argo's SubmitOpts, the fields driftd sets.
type argoSubmitOpts struct {
	Name       string   `json:"name"`
	Parameters []string `json:"parameters"` // "name=value"
	Labels     string   `json:"labels"`     // "key=value,key=value"
}

// kubeflowRun is the body of POST /apis/v2beta1/runs: the v2beta1 Run
// message, input fields only.
type kubeflowRun struct {
	DisplayName              string                `json:"display_name"`
	Description              string                `json:"description,omitempty"`
	ExperimentID             string                `json:"experiment_id,omitempty"`
	PipelineVersionReference kubeflowVersionRef    `json:"pipeline_version_reference"`
	RuntimeConfig            kubeflowRuntimeConfig `json:"runtime_config"`
}

type kubeflowVersionRef struct {
	PipelineID        string `json:"pipeline_id"`
	PipelineVersionID string `json:"pipeline_version_id"`
}

type kubeflowRuntimeConfig struct {
	Parameters map[string]any `json:"parameters"`
}

// presetPath returns the path segments a preset adds to the base url.
func presetPath(preset string, cfg sdk.Config) []string {
	switch preset {
	case PresetAirflow:
		return []string{"api", "v1", "dags", cfg.String("dag_id"), "dagRuns"}
	case PresetArgo:
		return []string{"api", "v1", "workflows", cfg.String("namespace"), "submit"}
	case PresetKubeflow:
		return []string{"apis", "v2beta1", "runs"}
	}
	return nil
}

// presetBody returns the function building a preset's request body.
func presetBody(preset string, cfg sdk.Config) func(sdk.Job) ([]byte, error) {
	switch preset {
	case PresetAirflow:
		return func(j sdk.Job) ([]byte, error) {
			return json.Marshal(airflowDagRun{DagRunID: j.ID, Conf: j})
		}
	case PresetArgo:
		ns, tmpl := cfg.String("namespace"), cfg.String("workflow_template")
		return func(j sdk.Job) ([]byte, error) {
			job, err := json.Marshal(j)
			if err != nil {
				return nil, err
			}
			return json.Marshal(argoSubmit{
				Namespace:    ns,
				ResourceKind: "WorkflowTemplate",
				ResourceName: tmpl,
				SubmitOptions: argoSubmitOpts{
					Name:       WorkflowName(j.ID),
					Parameters: []string{"job=" + string(job)},
					Labels: fmt.Sprintf("driftd.io/model=%s,driftd.io/version=%s,driftd.io/job=%s",
						LabelValue(j.Model), LabelValue(j.Version), LabelValue(j.ID)),
				},
			})
		}
	case PresetKubeflow:
		ref := kubeflowVersionRef{PipelineID: cfg.String("pipeline_id"), PipelineVersionID: cfg.String("pipeline_version_id")}
		exp := cfg.String("experiment_id")
		return func(j sdk.Job) ([]byte, error) {
			job, err := json.Marshal(j)
			if err != nil {
				return nil, err
			}
			return json.Marshal(kubeflowRun{
				DisplayName: j.ID,
				Description: fmt.Sprintf("driftd: retrain %s version %s (drift in %s seen by %s)",
					j.Model, j.Version, j.Metric, j.Detector),
				ExperimentID:             exp,
				PipelineVersionReference: ref,
				RuntimeConfig:            kubeflowRuntimeConfig{Parameters: map[string]any{"job": string(job)}},
			})
		}
	}
	return func(j sdk.Job) ([]byte, error) { return json.Marshal(j) }
}

// WorkflowName turns a job ID into a Kubernetes object name usable as an
// Argo workflow name: a DNS-1123 label (lowercase letters, digits and '-',
// starting and ending with a letter or digit, at most 63 characters, since
// Argo copies the name into a label). Other characters become '-'. A name
// that had to be shortened, or is empty, ends in a hash of the ID so that
// distinct IDs keep distinct names. The same ID always gives the same name.
func WorkflowName(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name != "" && len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(id))
	suffix := hex.EncodeToString(sum[:4])
	if name == "" {
		return "driftd-" + suffix
	}
	return strings.TrimRight(name[:63-len(suffix)-1], "-") + "-" + suffix
}

// LabelValue turns s into a Kubernetes label value: at most 63 characters
// from [A-Za-z0-9._-], starting and ending with a letter or digit. Other
// characters become '_'; the result may be empty.
func LabelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	v := string(b)
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.TrimFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

var (
	dagIDRe     = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,250}$`)
	dnsLabelRe  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsSubdomRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// checkDagID checks an Airflow DAG id: letters, digits, '_', '.' and '-'.
func checkDagID(s string) error {
	if !dagIDRe.MatchString(s) {
		return fmt.Errorf("%q is not an Airflow DAG id (letters, digits, '_', '.' and '-')", s)
	}
	return nil
}

// checkDNSLabel checks a Kubernetes namespace name.
func checkDNSLabel(s string) error {
	if !dnsLabelRe.MatchString(s) {
		return fmt.Errorf("%q is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)", s)
	}
	return nil
}

// checkDNSSubdomain checks a Kubernetes object name.
func checkDNSSubdomain(s string) error {
	if len(s) > 253 || !dnsSubdomRe.MatchString(s) {
		return fmt.Errorf("%q is not a Kubernetes object name (lowercase letters, digits, '-' and '.')", s)
	}
	return nil
}
