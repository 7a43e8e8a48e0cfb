// DockLock test tooling (never part of the package): signs and verifies composite
// ML-DSA-65 + Ed25519 signatures with Bouncy Castle, an implementation DockLock did not
// write, fetched from Maven Central by the test (tests/interop/test_interop_composite_bc.py).
//
//   java CompositeCheck sign MESSAGE_B64 CONTEXT_B64
//       prints: ML-DSA public key (SPKI DER), Ed25519 public key (SPKI DER), signature,
//       composite public key (SPKI DER), each base64 on its own line
//   java CompositeCheck verify MLDSA_SPKI_B64 ED25519_SPKI_B64 MESSAGE_B64 SIG_B64 CONTEXT_B64
//       prints VALID or INVALID
//
// CONTEXT_B64 "-" means no application context (the composite ctx is then empty).
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.Security;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

import org.bouncycastle.jcajce.CompositePublicKey;
import org.bouncycastle.jcajce.spec.ContextParameterSpec;
import org.bouncycastle.jce.provider.BouncyCastleProvider;

public final class CompositeCheck {
    private static final String ALG = "MLDSA65-ED25519-SHA512";

    private CompositeCheck() {
    }

    // Bouncy Castle takes the context after init (setParameter re-initialises).
    private static void context(Signature s, String context) throws Exception {
        if (!context.equals("-")) {
            s.setParameter(new ContextParameterSpec(Base64.getDecoder().decode(context)));
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        Base64.Decoder dec = Base64.getDecoder();
        Base64.Encoder enc = Base64.getEncoder();
        if (args.length == 3 && args[0].equals("sign")) {
            KeyPair pair = KeyPairGenerator.getInstance(ALG, "BC").generateKeyPair();
            Signature s = Signature.getInstance(ALG, "BC");
            s.initSign(pair.getPrivate());
            context(s, args[2]);
            s.update(dec.decode(args[1]));
            byte[] sig = s.sign();
            CompositePublicKey pub = (CompositePublicKey) pair.getPublic();
            System.out.println(enc.encodeToString(pub.getPublicKeys().get(0).getEncoded()));
            System.out.println(enc.encodeToString(pub.getPublicKeys().get(1).getEncoded()));
            System.out.println(enc.encodeToString(sig));
            System.out.println(enc.encodeToString(pub.getEncoded()));
        } else if (args.length == 6 && args[0].equals("verify")) {
            PublicKey ml = KeyFactory.getInstance("ML-DSA-65", "BC")
                .generatePublic(new X509EncodedKeySpec(dec.decode(args[1])));
            PublicKey ed = KeyFactory.getInstance("Ed25519", "BC")
                .generatePublic(new X509EncodedKeySpec(dec.decode(args[2])));
            CompositePublicKey pub = CompositePublicKey.builder(ALG)
                .addPublicKey(ml).addPublicKey(ed).build();
            Signature s = Signature.getInstance(ALG, "BC");
            s.initVerify(pub);
            context(s, args[5]);
            s.update(dec.decode(args[3]));
            System.out.println(s.verify(dec.decode(args[4])) ? "VALID" : "INVALID");
        } else {
            System.err.println("usage: sign MSG CTX | verify MLDSA ED MSG SIG CTX");
            System.exit(2);
        }
    }
}
