package serde

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// pythonEnv names the Python interpreter the interop test runs. When set, the test fails if that
// Python cannot import confluent_kafka's Avro deserializer; when unset, the test looks for the venv
// that `make test-serde` creates, then python3, and skips if neither has it.
const pythonEnv = "AIOPRODUCER_SERDE_PYTHON"

// pythonWithAvro returns a Python that has confluent_kafka with its Avro extras, or skips (fails, if
// pythonEnv names one).
func pythonWithAvro(t *testing.T) string {
	t.Helper()
	required := os.Getenv(pythonEnv)
	candidates := []string{required}
	if required == "" {
		venv, _ := filepath.Abs(filepath.Join("..", ".cache", "serde-py", "bin", "python"))
		candidates = []string{venv, "python3"}
	}
	var last string
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import confluent_kafka, fastavro; from confluent_kafka.schema_registry.avro import AvroDeserializer; print(confluent_kafka.version(), 'librdkafka', confluent_kafka.libversion()[0])").CombinedOutput()
		if err == nil {
			t.Logf("%s: confluent-kafka %s", py, bytes.TrimSpace(out))
			return py
		}
		last = py + ": " + err.Error() + ": " + string(bytes.TrimSpace(out))
	}
	if required != "" {
		t.Fatalf("%s=%s cannot import confluent_kafka's AvroDeserializer: %s", pythonEnv, required, last)
	}
	t.Skipf("no Python with confluent-kafka[avro] (%s); `make test-serde` installs it into .cache/serde-py and runs this test", last)
	return ""
}

// TestPythonDeserializingConsumerReadsAvroFromTheTypedProducer produces Avro values through a
// TypedProducer (to the mock cluster, or the real one of KAFKA_BOOTSTRAP), with a registry over HTTP
// that both processes reach (the fake, or the real one of SCHEMA_REGISTRY_URL through a counting
// proxy), and reads them back with the Python client's DeserializingConsumer and AvroDeserializer.
func TestPythonDeserializingConsumerReadsAvroFromTheTypedProducer(t *testing.T) {
	py := pythonWithAvro(t)
	bootstrap, topics := cluster(t, "payments")
	fr := registry(t)
	values, err := NewAvro[Payment](httpClient(t, fr.URL()), nil)
	require.NoError(t, err)
	tp := aioproducer.NewTyped(newProducer(t, bootstrap), keysFailingOn(failKey), values)
	sent := produceAll(t, tp, topics[0], payment)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "consume_avro.py"),
		bootstrap, fr.URL(), topics[0], strconv.Itoa(len(sent)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python: %s", stderr.String())

	type line struct {
		Offset int64   `json:"offset"`
		Key    string  `json:"key"`
		Value  Payment `json:"value"`
	}
	var got []line
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %q", sc.Text())
		got = append(got, l)
	}
	require.Len(t, got, len(sent))
	for j, l := range got {
		i := sent[j]
		assert.EqualValues(t, j, l.Offset)
		assert.Equal(t, keyOf(i), l.Key)
		assert.Equal(t, payment(i), l.Value)
	}
	assert.Equal(t, 1, fr.Requests()["GET /schemas/ids/{id}"], "the Python client fetched the schema once: %v", fr.Requests())
}
