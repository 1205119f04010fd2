package org.santeflux.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * HiveServer2 CUSTOM authentication for the pipeline's Thrift server.
 *
 * The password file (system property santeflux.thrift.passwd, mode 0600)
 * holds one line per user: user:pbkdf2-sha256:iterations:salt-hex:hash-hex,
 * written by scripts/sflux/cluster/auth.py. It is read on every login, so a
 * new password takes effect without a restart, and a missing or malformed
 * file refuses everyone instead of letting anyone in.
 */
public final class PasswordFileAuthenticator implements PasswdAuthenticationProvider {
    static final String FILE_PROPERTY = "santeflux.thrift.passwd";
    private static final String SCHEME = "pbkdf2-sha256";

    @Override
    public void Authenticate(String user, String password) throws AuthenticationException {
        String file = System.getProperty(FILE_PROPERTY);
        if (file == null || user == null || password == null || password.isEmpty()) {
            throw new AuthenticationException("authentication failed");
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AuthenticationException("authentication failed: password file unreadable");
        }
        for (String line : lines) {
            String[] parts = line.strip().split(":");
            if (parts.length == 5 && parts[0].equals(user) && parts[1].equals(SCHEME)) {
                if (matches(password, parts)) {
                    return;
                }
                break;
            }
        }
        throw new AuthenticationException("authentication failed");
    }

    private static boolean matches(String password, String[] parts) throws AuthenticationException {
        try {
            int iterations = Integer.parseInt(parts[2]);
            byte[] salt = HexFormat.of().parseHex(parts[3]);
            byte[] expected = HexFormat.of().parseHex(parts[4]);
            PBEKeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, expected.length * 8);
            byte[] actual = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
            spec.clearPassword();
            // Constant time: the comparison reveals nothing about how close a guess was.
            return MessageDigest.isEqual(actual, expected);
        } catch (IllegalArgumentException | GeneralSecurityException e) {
            throw new AuthenticationException("authentication failed: malformed password file");
        }
    }
}
