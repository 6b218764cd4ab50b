// Uses an installed peermq through its public headers only: compiles, links (static archives and
// their dependencies) and runs. Built by tests/install/run_install_test.sh, through
// find_package(peermq) and through pkg-config.
#include <peermq/peermq.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "install_check: FAIL: %s\n", what.c_str());
    return 1;
}

}  // namespace

int main() {
    // msgpack through the installed headers; MSGPACK_NO_BOOST comes from the package.
    const std::vector<int> values{1, 2, 3};
    const peermq::Payload payload = peermq::Payload::encode(values);
    if (payload.as<std::vector<int>>() != values) return fail("payload round trip");

    const peermq::Uuid id = peermq::Uuid::generate();
    if (id.is_nil()) return fail("Uuid::generate() gave the nil id");
    if (peermq::Uuid::parse(id.to_string()) != id) return fail("Uuid text round trip");

    const peermq::Status status = peermq::make_error(peermq::ErrorCode::not_found, "no such peer");
    if (status.ok() || status.to_string() != "not_found: no such peer") {
        return fail("Status::to_string() gave '" + status.to_string() + "'");
    }

    auto discovery = peermq::make_static_discovery({"127.0.0.1:5555"});
    if (!discovery) return fail("make_static_discovery: " + discovery.status().to_string());
    if ((*discovery)->backend() != "static") return fail("static discovery backend name");

    // A node on loopback with no discovery: binds, starts its actor, stops.
    auto node = peermq::Node::create({.name = "install-check", .interface = "lo"});
    if (!node) return fail("Node::create: " + node.status().to_string());
    if (node->id().is_nil()) return fail("the node's id is nil");
    std::printf("install_check: ok (node %s)\n", node->id().to_string().c_str());
    node->close();
    return 0;
}
