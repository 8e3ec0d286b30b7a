// JDBC batches through the hypershard gateway, for test/integration/gatewayIngest.test.ts.
// usage: java -cp postgresql.jar BatchInsert.java URL USER TABLE FIRST_DEVICE
// executeBatch of 600 one-row INSERTs in a transaction (pgjdbc opens it with a BEGIN in the batch
// and syncs about every 250 rows), then 300 more with autocommit, then one that fails (a NULL
// time) and is rolled back. Prints the update counts' sums.
import java.sql.*;
import java.time.*;
import java.util.*;

public class BatchInsert {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    String password = System.getenv("PGPASSWORD");
    if (password != null && !password.isEmpty()) props.setProperty("password", password);
    String table = args[2];
    int first = Integer.parseInt(args[3]);
    OffsetDateTime base = OffsetDateTime.of(2026, 12, 3, 0, 0, 0, 0, ZoneOffset.UTC);
    String sql = "INSERT INTO " + table + " (time, device_id, cpu, memory, temperature) VALUES (?, ?, ?, ?, ?)";
    StringBuilder out = new StringBuilder();
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      conn.setAutoCommit(false);
      out.append(batch(conn, sql, base, first, 0, 600)).append(' ');
      conn.commit();
      conn.setAutoCommit(true);
      out.append(batch(conn, sql, base, first, 600, 300)).append(' ');
      conn.setAutoCommit(false);
      try {
        batch(conn, sql, null, first, 900, 50);
        out.append("no-error");
      } catch (SQLException e) {
        conn.rollback();
        out.append("error");
      }
    }
    System.out.println(out);
  }

  static int batch(Connection conn, String sql, OffsetDateTime base, int first, int from, int count) throws SQLException {
    try (PreparedStatement ps = conn.prepareStatement(sql)) {
      for (int i = from; i < from + count; i++) {
        ps.setObject(1, base == null && i == from + count - 1 ? null : (base == null ? OffsetDateTime.of(2026, 12, 3, 0, 0, 0, 0, ZoneOffset.UTC) : base).minusSeconds(i * 13L));
        ps.setInt(2, first + i % 7);
        ps.setDouble(3, i * 0.75);
        if (i % 5 == 0) ps.setNull(4, Types.BIGINT); else ps.setLong(4, i % 11);
        ps.setBigDecimal(5, java.math.BigDecimal.valueOf(i, 2));
        ps.addBatch();
      }
      int sum = 0;
      for (int n : ps.executeBatch()) sum += n;
      return sum;
    }
  }
}
