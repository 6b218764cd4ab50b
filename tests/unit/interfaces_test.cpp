// network_interfaces(): the one walk of getifaddrs() that the node (binding), the embedded Avahi
// stack (its address records) and `peermq doctor` (its interface checks) read. It reads the
// kernel's list, so these tests look only at lo, which every network namespace has.
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>

#include "platform/interfaces.hpp"

namespace peermq::detail {
namespace {

TEST(NetworkInterfaces, ListLoOnceWithItsIndexFlagsAndAddress) {
    auto interfaces = network_interfaces();
    ASSERT_TRUE(interfaces) << interfaces.status().message();
    const auto& all = interfaces.value();
    EXPECT_EQ(std::count_if(all.begin(), all.end(),
                            [](const NetworkInterface& i) { return i.name == "lo"; }),
              1)
        << "one entry per interface, its getifaddrs() entries merged";
    const auto lo = std::find_if(all.begin(), all.end(),
                                 [](const NetworkInterface& i) { return i.name == "lo"; });
    ASSERT_NE(lo, all.end());
    EXPECT_EQ(lo->index, if_nametoindex("lo"));
    EXPECT_TRUE(lo->loopback());
    EXPECT_TRUE(lo->up());
    EXPECT_EQ(lo->ipv4(), "127.0.0.1");
    const bool has_ipv4 =
        std::any_of(lo->addresses.begin(), lo->addresses.end(), [](const InterfaceAddress& a) {
            return a.family == AF_INET && a.bytes[0] == 127 && a.bytes[3] == 1;
        });
    EXPECT_TRUE(has_ipv4) << "addresses in network byte order";
}

TEST(NetworkInterfaces, InterfaceIpv4NamesWhatIsMissing) {
    auto lo = interface_ipv4("lo");
    ASSERT_TRUE(lo) << lo.status().message();
    EXPECT_EQ(lo.value(), "127.0.0.1");

    auto missing = interface_ipv4("nosuch0");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.status().code(), ErrorCode::unknown_interface);
    EXPECT_EQ(missing.status().message(), "no network interface named 'nosuch0'");
}

}  // namespace
}  // namespace peermq::detail
