// A JDBC client against the hypershard gateway, for test/integration/gatewayClients.test.ts.
// usage: java -cp postgresql.jar GatewayClient.java URL USER [router] < cases.tsv > answers.json
// Each case runs in one REPEATABLE READ transaction: rewritten, then with hypershard.rewrite = off.
// Every statement runs 6 times so the driver switches to a named server-side prepared statement
// (prepareThreshold 5); the answers must not change when it does.
// With "router": each case outside a transaction, 7 times, the driver's binary transfer on (from
// the named statement on, results of types it knows in binary); "rewritten" is the first answer,
// "written" the last.
import java.sql.*;
import java.util.*;

public class GatewayClient {
  public static void main(String[] args) throws Exception {
    String input = new String(System.in.readAllBytes(), "UTF-8");
    boolean router = args.length > 2 && args[2].equals("router");
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    // Text results however a statement is run, so answers compare as the server printed them
    // (binary transfer would print 37.0 for the 37 a float8 is as text); router reads compare
    // with the same driver against the access node.
    if (!router) props.setProperty("binaryTransfer", "false");
    String password = System.getenv("PGPASSWORD");
    if (password != null && !password.isEmpty()) props.setProperty("password", password);
    StringBuilder out = new StringBuilder("{\"answers\":[");
    try (Connection conn = DriverManager.getConnection(args[0], props)) {
      if (router) {
        boolean firstCase = true;
        for (Map<String, Object> c : parseCases(input)) {
          String sql = ((String) c.get("sql")).replaceAll("\\$\\d+", "?");
          @SuppressWarnings("unchecked") List<Object> params = (List<Object>) c.get("params");
          String firstAnswer = null;
          String last = null;
          for (int i = 0; i < 7; i++) {
            last = run(conn, sql, params);
            if (firstAnswer == null) firstAnswer = last;
          }
          if (!firstCase) out.append(',');
          firstCase = false;
          out.append("{\"id\":").append(quote((String) c.get("id"))).append(",\"rewritten\":").append(firstAnswer).append(",\"written\":").append(last).append('}');
        }
        out.append("],\"pipelined\":null}");
        System.out.print(out);
        return;
      }
      conn.setAutoCommit(false);
      conn.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
      boolean first = true;
      for (Map<String, Object> c : parseCases(input)) {
        String sql = ((String) c.get("sql")).replaceAll("\\$\\d+", "?");
        @SuppressWarnings("unchecked") List<Object> params = (List<Object>) c.get("params");
        String rewritten = null;
        for (int i = 0; i < 6; i++) {
          String answer = run(conn, sql, params);
          if (rewritten != null && !rewritten.equals(answer)) throw new IllegalStateException("answer changed on execution " + i + " of " + c.get("id"));
          rewritten = answer;
        }
        try (Statement s = conn.createStatement()) { s.execute("SET hypershard.rewrite = off"); }
        String written = run(conn, sql, params);
        try (Statement s = conn.createStatement()) { s.execute("SET hypershard.rewrite = on"); }
        conn.commit();
        if (!first) out.append(',');
        first = false;
        out.append("{\"id\":").append(quote((String) c.get("id"))).append(",\"rewritten\":").append(rewritten).append(",\"written\":").append(written).append('}');
      }
    }
    out.append("],\"pipelined\":null}");
    System.out.print(out);
  }

  static String run(Connection conn, String sql, List<Object> params) throws SQLException {
    try (PreparedStatement ps = conn.prepareStatement(sql)) {
      for (int i = 0; i < params.size(); i++) {
        Object p = params.get(i);
        if (p instanceof List) ps.setArray(i + 1, conn.createArrayOf("int4", ((List<?>) p).toArray()));
        else if (p instanceof Long) ps.setInt(i + 1, ((Long) p).intValue());
        else ps.setObject(i + 1, p);
      }
      StringBuilder rows = new StringBuilder("[");
      try (ResultSet rs = ps.executeQuery()) {
        int n = rs.getMetaData().getColumnCount();
        boolean firstRow = true;
        while (rs.next()) {
          if (!firstRow) rows.append(',');
          firstRow = false;
          rows.append('[');
          for (int i = 1; i <= n; i++) {
            if (i > 1) rows.append(',');
            String v = rs.getString(i);
            rows.append(v == null ? "null" : quote(v));
          }
          rows.append(']');
        }
      }
      return rows.append(']').toString();
    }
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      if (ch == '"' || ch == '\\') b.append('\\').append(ch);
      else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
      else b.append(ch);
    }
    return b.append('"').toString();
  }

  // One case per line: id TAB sql TAB params, params separated by ";", each an integer or {1,2,3}.
  static List<Map<String, Object>> parseCases(String input) {
    List<Map<String, Object>> cases = new ArrayList<>();
    for (String line : input.split("\n")) {
      if (line.isBlank()) continue;
      String[] f = line.split("\t", -1);
      Map<String, Object> c = new HashMap<>();
      c.put("id", f[0]);
      c.put("sql", f[1]);
      List<Object> params = new ArrayList<>();
      for (String p : f[2].split(";")) {
        if (p.isEmpty()) continue;
        if (p.startsWith("{")) {
          List<Integer> arr = new ArrayList<>();
          for (String x : p.substring(1, p.length() - 1).split(",")) if (!x.isEmpty()) arr.add(Integer.parseInt(x));
          params.add(arr);
        } else params.add(Long.parseLong(p));
      }
      c.put("params", params);
      cases.add(c);
    }
    return cases;
  }

}
