#include "engine/blocking_pool.h"

namespace aetl {

BlockingPool::BlockingPool(size_t threads) : pool_(threads) {}
BlockingPool::~BlockingPool() { join(); }
void BlockingPool::join() { pool_.join(); }

}  // namespace aetl
