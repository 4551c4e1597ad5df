// HTTPS between the agent and its client, with certificates made by the openssl CLI at test
// time: a CA file, a pinned SHA-256 fingerprint, a wrong pin, a foreign CA.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <httplib.h>

#include "core/error.h"
#include "evaluators/agent/client.h"
#include "evaluators/agent/server.h"

using namespace mixnas;
using namespace mixnas::agent;

namespace {

const char* kToken = "tls-token-9012";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A self-signed certificate for 127.0.0.1 in a fresh folder: <dir>/<name>.crt, .key, and the
// fingerprint line of `openssl x509 -fingerprint -sha256` in .sha256.
struct Cert {
  std::string crt, key, fingerprint;
};

Cert make_cert(const std::string& dir, const std::string& name) {
  Cert c{dir + "/" + name + ".crt", dir + "/" + name + ".key", ""};
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      c.key + " -out " + c.crt + " 2>/dev/null && openssl x509 -noout -fingerprint -sha256 -in " +
      c.crt + " > " + dir + "/" + name + ".sha256";
  REQUIRE(std::system(cmd.c_str()) == 0);
  c.fingerprint = slurp(dir + "/" + name + ".sha256");
  while (!c.fingerprint.empty() && std::isspace(static_cast<unsigned char>(c.fingerprint.back()))) {
    c.fingerprint.pop_back();
  }
  return c;
}

std::string temp_dir() {
  char tmpl[] = "/tmp/mixnas_tls_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

AgentOptions tls_options(const Cert& cert) {
  AgentOptions o;
  o.port = 0;
  o.token = kToken;
  o.read_timeout_s = 2;
  o.tls_cert = cert.crt;
  o.tls_key = cert.key;
  return o;
}

}  // namespace

TEST_CASE("the client reaches an HTTPS agent through a CA file or a pinned fingerprint",
          "[agent]") {
  std::string dir = temp_dir();
  Cert agent_cert = make_cert(dir, "agent");
  Cert other_cert = make_cert(dir, "other");
  AgentServer server(tls_options(agent_cert));
  int port = server.start();
  REQUIRE(server.tls());
  AgentAddress addr{"127.0.0.1", port};

  SECTION("CA file") {
    TlsOptions tls;
    tls.ca_file = agent_cert.crt;
    AgentClient client(addr, kToken, 10, tls);
    CHECK(client.health().at("status") == "ok");
    CHECK(client.info().at("tls") == true);
  }
  SECTION("pinned fingerprint, as openssl prints it") {
    TlsOptions tls;
    tls.fingerprint_sha256 = agent_cert.fingerprint;
    AgentClient client(addr, kToken, 10, tls);
    CHECK(client.info().at("tls") == true);
  }
  SECTION("another certificate's pin: refused, not retryable, both fingerprints named") {
    TlsOptions tls;
    tls.fingerprint_sha256 = other_cert.fingerprint;
    AgentClient client(addr, kToken, 10, tls);
    try {
      client.health();
      FAIL("a wrong pin must fail");
    } catch (const AgentError& e) {
      CHECK_FALSE(e.retryable());
      CHECK_THAT(e.what(), Catch::Contains("not the tls_fingerprint_sha256"));
      std::string seen = agent_cert.fingerprint.substr(agent_cert.fingerprint.find('=') + 1);
      CHECK_THAT(e.what(), Catch::Contains(seen));
    }
  }
  SECTION("a CA that did not sign the agent's certificate") {
    TlsOptions tls;
    tls.ca_file = other_cert.crt;
    AgentClient client(addr, kToken, 10, tls);
    CHECK_THROWS_WITH(client.health(), Catch::Contains("not signed by tls_ca_file"));
  }
  SECTION("plain HTTP to the HTTPS agent gets no answer") {
    AgentClient client(addr, kToken, 3);
    CHECK_THROWS_AS(client.health(), AgentError);
  }
  SECTION("a device class over TLS measures layers") {
    RemoteOptions ro;
    ro.agents = {addr};
    ro.token = kToken;
    ro.tls.fingerprint_sha256 = agent_cert.fingerprint;
    RemoteEvaluator remote(ro);
    LayerSignature s;
    s.in_h = s.in_w = 8;
    s.in_c = s.out_c = 8;
    s.kernel = 3;
    MeasureOptions mo;
    mo.runs = 2;
    mo.warmup = 0;
    auto rows = remote.measure_layers({s}, mo);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].key == s.key());
  }
  server.stop();
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("TLS options are checked with clear errors", "[agent]") {
  std::string dir = temp_dir();
  Cert cert = make_cert(dir, "agent");
  AgentOptions o = tls_options(cert);
  o.tls_key = dir + "/missing.key";
  CHECK_THROWS_WITH(AgentServer(o), Catch::Contains("cannot load the TLS certificate"));
  o = tls_options(cert);
  o.tls_key.clear();
  CHECK_THROWS_WITH(AgentServer(o), Catch::Contains("--tls-cert and --tls-key"));
  // HTTPS may serve a network address without --insecure-http.
  o = tls_options(cert);
  o.host = "0.0.0.0";
  AgentServer network(o);
  CHECK(network.bind() > 0);

  CHECK(parse_sha256_fingerprint(cert.fingerprint).size() == 32);
  CHECK_THROWS_WITH(parse_sha256_fingerprint("AB:CD"), Catch::Contains("64 hex digits"));
  TlsOptions both;
  both.ca_file = cert.crt;
  both.fingerprint_sha256 = cert.fingerprint;
  CHECK_THROWS_WITH(both.validate(), Catch::Contains("not both"));
  std::system(("rm -rf " + dir).c_str());
}
