package fakeregistry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
)

// NewProxy starts a Server that forwards every request to the Schema Registry at target, a base URL
// such as Confluent's http://host:8081 or Apicurio's http://host:8080/apis/ccompat/v7, and counts them
// under the fake's routes: a test that counts requests runs unchanged against a real registry.
//
// Requests and Total count as the fake does (a request for a path the fake does not speak is counted
// under its method and path). Subjects returns the subjects that a successful registration through
// the proxy named, not every subject the registry holds. Unhandled is always empty: the registry
// answers everything.
func NewProxy(target string) (*Server, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fakeregistry: registry URL %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("fakeregistry: registry URL %q: want http(s)://host[:port][/path]", target)
	}
	s := &Server{ids: map[string]int{}, subjects: map[string][]int{}, requests: map[string]int{}}
	// A transport of its own, so that Close can close its idle connections (goleak).
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	proxy := &httputil.ReverseProxy{Transport: s.transport, Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u) // the target's path is prepended to the request's
	}}
	mux := http.NewServeMux()
	for _, pattern := range routes {
		s.route(mux, pattern, func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			proxy.ServeHTTP(rec, r)
			if pattern == routeRegister && rec.status == http.StatusOK {
				s.mu.Lock()
				if _, ok := s.subjects[r.PathValue("subject")]; !ok {
					s.subjects[r.PathValue("subject")] = nil
				}
				s.mu.Unlock()
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.Method+" "+r.URL.Path]++
		s.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(mux)
	return s, nil
}

// statusRecorder keeps the status of the response it writes.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
