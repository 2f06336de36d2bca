#include "config/redis_url_field.h"

#include <stdexcept>
#include <string>

namespace aetl {

redis::RedisUrl read_redis_url(ConfigReader& r, ConfigProblems& problems) {
  std::optional<ConfigString> url = r.string("url");
  try {
    return redis::parse_redis_url(url ? url->text : std::string(kRedisUrlField.default_text));
  } catch (const std::invalid_argument& e) {
    if (url) problems.add(url->where, std::string("url: ") + e.what());
  }
  return {};
}

}  // namespace aetl
