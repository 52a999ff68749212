package com.example.payments;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;

public class PaymentGateway {
    private static final String DB_PASSWORD = "Jav4-wCQAupmyyc18";
    private static final String JDBC_URL =
        "jdbc:postgresql://db.example.com:5432/payments?user=payments&password=xFR5FuPlGbBK";
    private static final String STRIPE_RESTRICTED_KEY = "rk_live_RYBLXgazNMrvSlcbFd0tmZHA";
    private static final String AWS_SECRET_KEY = "jiId1wL2vQRM/AynCnl2TEXAMPLEKEYyAJwRECBx";
    private static final String LEGACY_CONN = "Server=sql01.example.com;Database=pay;User Id=svc;Password=Ad0!VOAWkaMB6J;";
    private final String serviceJwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiYXRjaC13b3JrZXIiLCJuYW1lIjoiRXhhbXBsZSBVc2VyIiwiaWF0IjoxNTE2MjM5MDIyfQ.WeZI5XciVuAfx_-l5LevyrnqmKN_zQCGqXP-HHgJDxn";
    private String encryptionKey = "dSKhS4vHcMFSkoiYxdIlqwWtkgCk8SmgB6zr5tTu";

    private static final String SIGNING_KEY = "-----BEGIN PRIVATE KEY-----\ny8f5qVSJYlfjUua9+2RF9UaO4axyhRguqc4NfihdZb7wcwEgzbXeGN/87o0KYBr6\no/DLWCFFwN5CSmixvUUUk795S+MiV7C5fZ+Xae42naQIjLKNTJE7nMdwTzZJwxBE\n4uDiftbdH15IhrHoDAwkIIwCGltuvCm9wOIbYKroRwR2EBeLD/dCNef3IExg+hJR\nBvoO6HPu1eRfSffaGu0xVECBfAbIA+NfWL12QdAxFuGSsw98L+FbQMOD6HVd3vrR\n4SNjbrZPDLlxdACCOv47IUuaK/8YMLMekMKUEQgbBVL1hj/LGY5+d51XrguKQ+2g\ncNWhORPUnUacDjgcXCABY0Ldc/de6qIIJMMS42vrQHuMxFIe34iqUhuJh0asBNK5\nGkEepYC/b+eqrt21qxIT==\n-----END PRIVATE KEY-----";

    public Connection connect() throws SQLException {
        return DriverManager.getConnection(JDBC_URL, "payments", DB_PASSWORD);
    }
}
