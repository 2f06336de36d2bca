#pragma once
/// The event loop is Boost.Asio (Debian's libboost1.81-dev: Asio 1.26, with
/// Boost.Beast beside it for WebSockets). The code names it `asio::`, and
/// `asio::error_code` / `asio::system_error` are Boost.System's: this header maps
/// those names. A file includes the Boost.Asio headers it needs, then this one.
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace boost::asio {}

namespace asio {
using namespace boost::asio;
using boost::system::error_code;
using boost::system::system_error;
}  // namespace asio
