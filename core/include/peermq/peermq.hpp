// The umbrella header: everything a peermq application needs, MessagePack typed payloads
// (<peermq/msgpack.hpp>) included. A file that needs less includes less: <peermq/node.hpp> is
// the node with the byte API, without msgpack-c.
#pragma once

#include "peermq/clock.hpp"
#include "peermq/dead_letters.hpp"
#include "peermq/discovery.hpp"
#include "peermq/keys.hpp"
#include "peermq/message.hpp"
#include "peermq/msgpack.hpp"
#include "peermq/node.hpp"
#include "peermq/options.hpp"
#include "peermq/payload.hpp"
#include "peermq/stats.hpp"
#include "peermq/status.hpp"
#include "peermq/uuid.hpp"

#if __has_include("peermq/discovery/avahi.hpp")
#include "peermq/discovery/avahi.hpp"
#endif
#if __has_include("peermq/patterns/request_reply.hpp")
#include "peermq/patterns/request_reply.hpp"
#endif
