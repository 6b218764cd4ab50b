# shellcheck shell=bash
# Sourced by scripts/avahi-lo.sh and scripts/lab.sh (bash): the one place that writes the
# avahi-daemon configuration peermq runs a daemon with. Sourcing it only defines the function.
#
# write_avahi_conf FILE ALLOW [DENY] [HOST_NAME]
#   ALLOW      allow-interfaces, comma-separated; required: the daemon uses these and no other
#              (lo in the root namespace; the lab link inside a lab namespace)
#   DENY       deny-interfaces, comma-separated; may be empty
#   HOST_NAME  host-name; empty: the daemon's default (the machine's host name)
# Always: IPv4 only, no wide-area, no reflector, no HINFO, workstation or domain records.
write_avahi_conf() {
    local file=$1 allow=${2:-} deny=${3:-} host=${4:-}
    if [ -z "$allow" ]; then
        echo "write_avahi_conf: no allow-interfaces for $file; refusing (mDNS on every interface)" >&2
        return 1
    fi
    cat >"$file" <<CONF
# Written by peermq scripts/avahi-conf.sh for ${0##*/}: mDNS on $allow only.
[server]
${host:+host-name=$host}
use-ipv4=yes
use-ipv6=no
allow-interfaces=$allow
${deny:+deny-interfaces=$deny}
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no
publish-domain=no
# Else a resolver asking for any protocol may get an IPv6 address in an IPv4 answer.
publish-aaaa-on-ipv4=no
publish-a-on-ipv6=no

[reflector]
enable-reflector=no
CONF
}
