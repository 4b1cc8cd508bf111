// Package fakeregistry is an in-process HTTP server that speaks the part of the Confluent Schema
// Registry REST API that serializers and deserializers use: registering a schema under a subject,
// looking one up, fetching a schema by id or a subject's version, and the topic-to-subject associations
// (there are none). It lets clients in other
// processes (the Python client in the interop test) share one registry with the Go code under test,
// which confluent-kafka-go's mock:// registry cannot, and it counts every request, so tests can show
// how often the registry is asked.
//
// NewProxy puts the same counting in front of a real registry.
//
// It is a test double, not a registry: schemas are compared as exact strings (a real registry compares
// canonical forms), nothing is checked for compatibility, and nothing is persisted.
package fakeregistry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
)

// Reference is a schema reference, as the API carries it.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// schema is a registered schema.
type schema struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"` // empty for AVRO, as the registry answers
	References []Reference `json:"references,omitempty"`
}

// key identifies a schema across subjects.
func (s schema) key() string {
	refs, _ := json.Marshal(s.References)
	return s.SchemaType + "\x00" + s.Schema + "\x00" + string(refs)
}

// version is a schema under a subject.
type version struct {
	Subject string `json:"subject"`
	ID      int    `json:"id"`
	Version int    `json:"version"`
	schema
}

// The routes the fake speaks, by the patterns that Requests counts them under.
const (
	routeRegister     = "POST /subjects/{subject}/versions"
	routeLookup       = "POST /subjects/{subject}"
	routeByID         = "GET /schemas/ids/{id}"
	routeSubjects     = "GET /subjects"
	routeVersions     = "GET /subjects/{subject}/versions"
	routeVersion      = "GET /subjects/{subject}/versions/{version}"
	routeAssociations = "GET /associations/resources/{namespace}/{name}"
)

// routes are all of them.
var routes = []string{routeRegister, routeLookup, routeByID, routeSubjects, routeVersions, routeVersion, routeAssociations}

// Server is a fake Schema Registry listening on 127.0.0.1. It is safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu        sync.Mutex
	schemas   []schema         // by id - 1
	ids       map[string]int   // schema key -> id
	subjects  map[string][]int // subject -> ids, by version - 1
	requests  map[string]int   // route -> count
	unhandled []string         // requests no route took

	transport *http.Transport // NewProxy's, to the registry
}

// New starts a Server; Close stops it.
func New() *Server {
	s := &Server{ids: map[string]int{}, subjects: map[string][]int{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	s.route(mux, routeRegister, s.register)
	s.route(mux, routeLookup, s.lookup)
	s.route(mux, routeByID, s.byID)
	s.route(mux, routeSubjects, s.listSubjects)
	s.route(mux, routeVersions, s.listVersions)
	s.route(mux, routeVersion, s.getVersion)
	// No subject is associated with a topic: confluent-kafka-go's default subject name strategy asks,
	// then falls back to the topic name strategy ("<topic>-key", "<topic>-value").
	s.route(mux, routeAssociations, func(w http.ResponseWriter, _ *http.Request) {
		reply(w, []any{})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.unhandled = append(s.unhandled, r.Method+" "+r.URL.String())
		s.mu.Unlock()
		fail(w, http.StatusNotFound, 404, "fakeregistry: no route for "+r.Method+" "+r.URL.Path)
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// route registers h for pattern, counting its requests under pattern.
func (s *Server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[pattern]++
		s.mu.Unlock()
		h(w, r)
	})
}

// URL is the registry's base URL, for schemaregistry.NewConfig and the Python client's "url".
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server and waits for the requests in progress.
func (s *Server) Close() {
	s.srv.Close()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
}

// Requests returns how many requests each route served, by its pattern ("POST
// /subjects/{subject}/versions", "GET /schemas/ids/{id}", ...).
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Total returns how many requests the routes served, all together.
func (s *Server) Total() int {
	n := 0
	for _, v := range s.Requests() {
		n += v
	}
	return n
}

// Unhandled returns the requests that no route took ("METHOD /path?query"): a client asked for
// something this fake does not speak.
func (s *Server) Unhandled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.unhandled)
}

// Subjects returns the subjects, sorted.
func (s *Server) Subjects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.subjects {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	sc, ok := readSchema(w, r)
	if !ok {
		return
	}
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ids[sc.key()]
	if !ok {
		s.schemas = append(s.schemas, sc)
		id = len(s.schemas)
		s.ids[sc.key()] = id
	}
	if !slices.Contains(s.subjects[subject], id) {
		s.subjects[subject] = append(s.subjects[subject], id)
	}
	reply(w, map[string]int{"id": id})
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	sc, ok := readSchema(w, r)
	if !ok {
		return
	}
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, ok := s.subjects[subject]
	if !ok {
		fail(w, http.StatusNotFound, 40401, "Subject '"+subject+"' not found.")
		return
	}
	id := s.ids[sc.key()]
	v := slices.Index(ids, id)
	if id == 0 || v < 0 {
		fail(w, http.StatusNotFound, 40403, "Schema not found")
		return
	}
	reply(w, version{Subject: subject, ID: id, Version: v + 1, schema: s.schemas[id-1]})
}

func (s *Server) byID(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || id < 1 || id > len(s.schemas) {
		fail(w, http.StatusNotFound, 40403, fmt.Sprintf("Schema %s not found", r.PathValue("id")))
		return
	}
	reply(w, s.schemas[id-1])
}

func (s *Server) listSubjects(w http.ResponseWriter, _ *http.Request) {
	reply(w, s.Subjects())
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, ok := s.subjects[subject]
	if !ok {
		fail(w, http.StatusNotFound, 40401, "Subject '"+subject+"' not found.")
		return
	}
	vs := make([]int, len(ids))
	for i := range ids {
		vs[i] = i + 1
	}
	reply(w, vs)
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, ok := s.subjects[subject]
	if !ok {
		fail(w, http.StatusNotFound, 40401, "Subject '"+subject+"' not found.")
		return
	}
	v := len(ids)
	if p := r.PathValue("version"); p != "latest" && p != "-1" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > len(ids) {
			fail(w, http.StatusNotFound, 40402, "Version "+p+" not found.")
			return
		}
		v = n
	}
	id := ids[v-1]
	reply(w, version{Subject: subject, ID: id, Version: v, schema: s.schemas[id-1]})
}

// readSchema decodes a request's schema; AVRO is stored as the empty type, as the registry does.
func readSchema(w http.ResponseWriter, r *http.Request) (schema, bool) {
	var sc schema
	if err := json.NewDecoder(r.Body).Decode(&sc); err != nil || sc.Schema == "" {
		fail(w, http.StatusUnprocessableEntity, 42201, "Invalid schema")
		return schema{}, false
	}
	if sc.SchemaType == "AVRO" {
		sc.SchemaType = ""
	}
	return sc, true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}
