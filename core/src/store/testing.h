// store/testing.h — raw SQL access to a Store, for tests and benchmarks only.
//
// Tests check what the store wrote with plain SQL (the schema is documented
// in results/README.md), and some plant rows no typed function writes. Code
// under core/src never includes this header: it goes through the typed store
// functions, so that all SQL lives in store/.
#pragma once

namespace SQLite { class Database; }

namespace reglab::store {

class Store;

// The connection `store` owns; valid while `store` lives.
SQLite::Database& raw_connection_for_tests(Store& store);

}  // namespace reglab::store
