// store/connection.h — the store's raw SQLite connection, for store/ only.
//
// The typed store modules (dashboard_queries, sweep_results, metric_series,
// slurm_records, shard_merge) are separate files so that store.h does not grow
// into one header for every query; they reach the connection through this
// function. Nothing outside core/src/store includes this header: the rest of
// reglab calls typed functions, and tests use store/testing.h.
#pragma once

namespace SQLite { class Database; }

namespace reglab::store {

class Store;

// The connection `store` owns; valid while `store` lives. A read-only Store
// gives a read-only connection (writes through it throw SQLite::Exception).
SQLite::Database& connection(Store& store);

}  // namespace reglab::store
