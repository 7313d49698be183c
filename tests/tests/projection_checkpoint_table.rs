//! Projections that start together on a fresh PostgreSQL database all
//! create the checkpoint table: none of them may fail for racing another
//! (`CREATE TABLE IF NOT EXISTS` alone is not safe against itself there).

use annals::projection::ProjectionDatabase;
use annals_tests::postgres::{admin_connection, fresh_schema, test_url};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_the_checkpoint_table_all_succeed() {
    for _ in 0..5 {
        let schema = fresh_schema();
        let mut admin = admin_connection().await;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let options = test_url()
            .parse::<PgConnectOptions>()
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .expect("PostgreSQL must be reachable");
        // Eight connections open first, then all create at once.
        let mut conns = Vec::new();
        for _ in 0..8 {
            conns.push(pool.acquire().await.unwrap());
        }
        let creates = conns.into_iter().map(|mut conn| {
            tokio::spawn(async move {
                <sqlx::Postgres as ProjectionDatabase>::create_checkpoints(&mut conn).await
            })
        });
        for created in futures::future::join_all(creates).await {
            created.unwrap().expect("every create succeeds");
        }
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'annals_projection_checkpoints' \
             AND schemaname = current_schema()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(tables, 1);
        pool.close().await;
        let _ = admin.execute("SELECT 1").await;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
