//! RSA key pairs built into the sandbox.
//!
//! Seeded RSA-signed JWT and OIDC access profiles need key material that is the same on every
//! run (so `--seed N` gives the same inventory) and whose private half the sandbox can hand to
//! keyshift's live verification through the signing-secrets file. These three 2048-bit pairs
//! were generated once with `openssl genrsa 2048` / `openssl rsa -pubout` and are **test
//! material only**: they are public in this repository and must never protect anything real.
//!
//! `n` and `e` are the public modulus and exponent, base64url without padding, as served by the
//! sandbox's small OIDC provider (`<url>/workato-apim/_idp/jwks.json`).

/// One built-in RSA key pair.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinKeyPair {
    /// Key id used in the sandbox JWKS and in the signing-secrets file.
    pub kid: &'static str,
    /// PKCS#8 private key, PEM.
    pub private_pem: &'static str,
    /// SubjectPublicKeyInfo public key, PEM (what a legacy `rsa` profile holds as `jwt_secret`).
    pub public_pem: &'static str,
    /// Modulus, base64url without padding.
    pub n: &'static str,
    /// Public exponent, base64url without padding.
    pub e: &'static str,
}

/// The built-in key pairs, in a fixed order (the generator picks them by index).
pub const KEYPAIRS: [BuiltinKeyPair; 3] = [
    BuiltinKeyPair {
        kid: "keyshift-sandbox-rsa-1",
        private_pem: "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDbkdCobxuqpOJO\niHPTmlRfBddQtVT0vujg62EJSLuqvzP8deQgQtCrKtCGyEQ6gb9McP1tKWgvUIUE\nn3UHVBm0rWHuFzy9btEQDbXWy9zUJgKx40Q1qBpT5snLbGNFGXQndl4LNfB/xU0v\n0tZeqQSWDPqZhSIv7jyUe43jfYNd1wiiDrhiRdNVIva+Xo96sHR1lazoYdMwzSce\nXlx3r4r8AJRvRKlkYewVV6QThhzvuLG8Wel6btyKoB6XlhIzQLe4Fg3B1rPU2sSu\n6rBCFVDMrKUEtHG1DGCyvq99boh27P+A7sOPd+aUh0iuhaLRNa7Ntm9vIWbpA/M5\nXLgsLnXTAgMBAAECggEAG9FSfTRubeUr4sU433MrA0rrJ4eBtuxE9tH7XkC/vfcx\nb+fDui6c30KyXpEay8rKYLXj9aOMVoo+AALvwbju9MwOnyqEgH98ryr9gbQcSyhx\nqPXhG2crxrtzj3kw7n02ERXW/lacHKPzjn6IuD9znEsSqMaMOURWmn040byCGy45\n5jk9KLTJNkGaQ+wyVMRFOg2KxjV5MKfcpDBnO/6dsqZYN8rKyTIg69n++urota11\noNWxBLxSlOeeCrVKICwsb4rvQ/73F+Jqzf8/PCPvmDdqQt3p1hroyaJdMg/N3St+\npQk9wbsaaRedYF5QQdgqZ2pdCQsYkPPrlhnfQdWLqQKBgQD/JFRitYWHG+EN+ZZJ\njTDZyqOTjn1Z04ZumWQppthBQNAhhMAZCqj2MXFojnuFpAsfkCEGT4/8yT8Ag+B0\n8m7UhNc2lg8w2GzBwmeLCqE2uPXiA36P0aD8ldt6Clmv9ZxzB9KJ3AtYy5kOQvuV\nflBG6sDPYGH8ZeStH09LLZOTdwKBgQDcTtvOggzbUJKE+rl3Qqta9Vna1MBTj2CE\nqHa/ZgMMZdBBpFfmpndwO65miIdhaeNs6xg9ldEsvIhWdYemBrEf+rAP91OcTc+i\nxrXbdDf007S2SwxcSq85q8Jolkq2QFcPXtBaib5BQNYaWuZAgB0sdHbEfR+AVwRf\nGyX1CRAvhQKBgFA4ngfDR06p52M7fJN3v0pbOn9kp+kcZwJTXHj0Kr6poEdJtBSr\nk2CFP0E+u3vTjmPIL3oKfh1fMV36GRLsPwi3E+vn1rLm+Zsagu/m0bWhBj6gFqUl\nplaEz9NZecWnlh9c8EfEVhT/PwqK6QuiAZ+qpCEQDv8LEpGUbJwYonQVAoGALAln\nToQYZc5ZO1OStxAQiIH6kA9u0kUamenCsseFXHkNg9GB8Izd2wVS+xPXW9V6rE7h\n7Y2A3lxhNEcR8lHsHeRSRR6/C8NR+cuWlmNIvBuFR9sAgYI8PF7k4VsJXBzISj49\nj5tw+EIpieMZm1MAgd5VzzjjjxfVu90FXVGOdrECgYEAozIBizX033YTSHjuM2Kl\npstsjWgDv0tWgsz26lY8oO9T3PnSKepE1x2IIwy4G3mG8TmHW3i0vP4weYCRx1hu\nMxE/GjJ3BKMqYuj2InYByq1Tqzi3/dCra4ESxZbuQGlGs9u1AogOhEBr4pkA3QZt\nps52/uSPROyEx1dZBSdUcdE=\n-----END PRIVATE KEY-----\n",
        public_pem: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA25HQqG8bqqTiTohz05pU\nXwXXULVU9L7o4OthCUi7qr8z/HXkIELQqyrQhshEOoG/THD9bSloL1CFBJ91B1QZ\ntK1h7hc8vW7REA211svc1CYCseNENagaU+bJy2xjRRl0J3ZeCzXwf8VNL9LWXqkE\nlgz6mYUiL+48lHuN432DXdcIog64YkXTVSL2vl6PerB0dZWs6GHTMM0nHl5cd6+K\n/ACUb0SpZGHsFVekE4Yc77ixvFnpem7ciqAel5YSM0C3uBYNwdaz1NrEruqwQhVQ\nzKylBLRxtQxgsr6vfW6Iduz/gO7Dj3fmlIdIroWi0TWuzbZvbyFm6QPzOVy4LC51\n0wIDAQAB\n-----END PUBLIC KEY-----\n",
        n: "25HQqG8bqqTiTohz05pUXwXXULVU9L7o4OthCUi7qr8z_HXkIELQqyrQhshEOoG_THD9bSloL1CFBJ91B1QZtK1h7hc8vW7REA211svc1CYCseNENagaU-bJy2xjRRl0J3ZeCzXwf8VNL9LWXqkElgz6mYUiL-48lHuN432DXdcIog64YkXTVSL2vl6PerB0dZWs6GHTMM0nHl5cd6-K_ACUb0SpZGHsFVekE4Yc77ixvFnpem7ciqAel5YSM0C3uBYNwdaz1NrEruqwQhVQzKylBLRxtQxgsr6vfW6Iduz_gO7Dj3fmlIdIroWi0TWuzbZvbyFm6QPzOVy4LC510w",
        e: "AQAB",
    },
    BuiltinKeyPair {
        kid: "keyshift-sandbox-rsa-2",
        private_pem: "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCO4ryPUvTvIWz5\n5RmthGAnsiX5t2rBsTFSOyJgDNrA0KVlny63K1fi97JYRVtCjwFqTz0WKNzrL/P5\nfsO5C4N2U1iQRtAHUvB0DyVy7TnD4lACuLgek85K31ATKGF5ys5adWXzLcE2ss9u\nhvdGEoG7M94yIxZByzo6QMM9K6Lop2ksOzp4S+VFZx87cJrCJgfC5Srl2xJXsyQS\ndQj2yFuVcBGnlocKlnwcUKY3+3Emzfg1D8z2NJhKNVv5ZQrLYWjoUjXsbK4iqrP0\nNvXgFyvv8XJXjLgbOSM795Z4ZMP0W5W6z3YbqMQ1NFgUSQsgI2QPrSUevc+uNzUR\nlkCxErktAgMBAAECggEAFI1LZugdP+oUZStNUrZ4KC2JJc56hgqpF/VWf+9JZbN9\nHs1TKFiNJyHOnsC3HC86mmJ0XGQbRp7anlfb6hlcWuApHHN7B5qn6GGnVs0FYoYC\nUSnlncxPv1g4idDkmGKR5NP/CofZwzbb/D9ggM03qMgQnTCLyoHjSa64Bmvo3kLD\nHj+RbWHIvX1FPsQ8resCR8l99hffNEKs5M0FYFIVYIpUQAOMMpVlctU740iTLXqj\nuFCCrUhUDWXVg0vA50ZFHFbHrhyGNwUSOTTeI2ghuCLGcoIk1SwX8EpXh1qXNwMP\nZ+6QXEZYJWa18jQdICzsN0hkJEnajfa/wP/DfkpppwKBgQDHZuCZ2jHCymWu+ef4\nW2QuXDfbgU1H4PknNRRCUJ+kYT+Llo1Qr+JE6zizm1JbYOVe4bDHwhI4xtgz9ruy\nfvDZIDYX8SqCuOClMgF2IybuNk6NLu15tq0zaBbYDqwTHhCXFCFMTtypriEZ0UUZ\nF9A6AmGOGdqn2wnq00cQWkeLfwKBgQC3cTqJPIGFGG/vmK684C/RbB1a6zgBgiZG\nJl23SD/joVD4EHiewfe95nW3a/fXwevhLAp3Ot6C00ciTcWYy/5hkfzpo2z1/kdU\nGQPw12xY7f7/W6KIuk/ciRCkFBc15HK2+5NPZ2Y1/aKSKsoQXAzQ1YLKH+VDuHkN\nsGW+SisBUwKBgQC+eM0O6dgio8dhzyIAoPwfNMO+j9LMWGBnTVKezfjQwnw60IMI\nkhnnj3FIT5Pp6bLwYVHGXuGdDoQzjvpYVN2n6hcB48KhwAwGgK/Ys1dasNF0F2GM\npCzqMAGyPMGuOUfLqNTt2V77TnQb/0Sr5Y1n/CJH5PZy5M6iW1NEkZhJ7QKBgGHa\n9O7gZ/cn4g5d1FjM/rUoh0BI2cd0NhaVwMhUskArfZXWs4F81ztmBMWjwsJFoB6t\n76dKsAf5zKhv9EheCYTi65d2pllTG5mw/nkrcZC+5JgzubBWMuPh+g6M6RTGmKsj\n6KEi91M1ydNPIBs5/1wniW1pNlO5xFmZD61Cw04hAoGBAL+L6Vtv1+VRyz+VJLnk\n/O9noUkEcarqzABQT0eDGg0Gzcfu+k64zIonV6xoGkw9V3VrkNrwteL18aqHwq/f\nSNdUSkvT6dj4EOqdFpivjRiGMQ2SMZnD6Q90PhaNQuAj5C0qutN8io+H546Gf4HZ\n+zOp9kReMWScg/CuBcJKCX3g\n-----END PRIVATE KEY-----\n",
        public_pem: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAjuK8j1L07yFs+eUZrYRg\nJ7Il+bdqwbExUjsiYAzawNClZZ8utytX4veyWEVbQo8Bak89Fijc6y/z+X7DuQuD\ndlNYkEbQB1LwdA8lcu05w+JQAri4HpPOSt9QEyhhecrOWnVl8y3BNrLPbob3RhKB\nuzPeMiMWQcs6OkDDPSui6KdpLDs6eEvlRWcfO3CawiYHwuUq5dsSV7MkEnUI9shb\nlXARp5aHCpZ8HFCmN/txJs34NQ/M9jSYSjVb+WUKy2Fo6FI17GyuIqqz9Db14Bcr\n7/FyV4y4GzkjO/eWeGTD9FuVus92G6jENTRYFEkLICNkD60lHr3Prjc1EZZAsRK5\nLQIDAQAB\n-----END PUBLIC KEY-----\n",
        n: "juK8j1L07yFs-eUZrYRgJ7Il-bdqwbExUjsiYAzawNClZZ8utytX4veyWEVbQo8Bak89Fijc6y_z-X7DuQuDdlNYkEbQB1LwdA8lcu05w-JQAri4HpPOSt9QEyhhecrOWnVl8y3BNrLPbob3RhKBuzPeMiMWQcs6OkDDPSui6KdpLDs6eEvlRWcfO3CawiYHwuUq5dsSV7MkEnUI9shblXARp5aHCpZ8HFCmN_txJs34NQ_M9jSYSjVb-WUKy2Fo6FI17GyuIqqz9Db14Bcr7_FyV4y4GzkjO_eWeGTD9FuVus92G6jENTRYFEkLICNkD60lHr3Prjc1EZZAsRK5LQ",
        e: "AQAB",
    },
    BuiltinKeyPair {
        kid: "keyshift-sandbox-rsa-3",
        private_pem: "-----BEGIN PRIVATE KEY-----\nMIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCTcNxyov72n2y3\nFElT2mzZq7LH4zZccB1+X+95C7kG8hL0jsBfQ01DnJomCT9NzqtWsRUyARb+J+x2\nFs4ISc97vNIeK5H/lZvkN7CcRgqxAb5ZqV7X9Q7tMnGRPyWyvhIbK0L7K9FzOIS6\n/j0wUbBQJMyTZH4n6JVHWI2uV6Hhvcm31pdkOHxZyAo8BiqQ2tQMZtWDdARUlH3h\nKQiWxkxZsg5h+0ISZ6fzVAyblYSx58cntAlpwlUnXc40WOKZkVIjNS6wa2CbdCL9\ndwJnp8fHeEs57vk3ZqSXzQMu7KGLIpCt38U9XzUWLbiix/7Ij8uGbl6B4Gy5vixQ\n8TU5bX8bAgMBAAECggEACoFpLms6Gt0t2YxYKTcQDcvJIlWojZpDemS1jdIYWKFZ\nA79EKnAuNNoXYGHE9p36Nrl0FtWzC2BRiJyECQfRVodpZVLvb977dkhtjMUE2qs9\nd+q0jP4IwT1DOvkyjh4y8L1QDtDcIgdDQIZVr81c8Gj0LAW7Y3aUDxBakAiYdUV9\nRcpylutA6scACeLZckR6Gf8ew8pbsOf1q2KbdAlzCF7VGZnfszsiM8pCMLbCC3fR\nTJW4Gh2WRyMfN8ROuggPD6r+CqiPxLDZ35nPSAlv/vETeq3g7gVQbiygIMwUQQAq\ndpv0yILD7RhHnx2Ji91VkcwZGivyadz1wbzDuxMsSQKBgQDFXP+9+RhKqGtds1V/\nf03bCrVdgRCNo5f4jeqHMZVElhlrBI4c36koKWoXSKjHFCKKi/MMx8Mn16mprmYM\nVBSLMirAT3xZqC+mWNgmIh4tw0LjuJad56cNd/f1dbqcRcV7yQsrIrK6PAcdjcCi\n6gWkjwu4Vn8AuGiFbeAOs7Lz7wKBgQC/PuCM2UWEvw3CP+k56OUyiyyl/dThzIIE\nYiionMlJAxGyFpkPNXnf/LC1AEZCgq1+TK5wCr3vhh6ybTtNgj3o2tERG/P0vE1R\nnqAzbbgWu9b6WZkRZho0WFUQfwSbYyCNE2f1wlNaIZKMIXJDB/3W0+pgF5+q4MlU\nJAn2H5nLlQKBgQCtcKnKT/I6AcHAqU2UatKHkOSLVFWwszhlFIoq3rb3fBTASFN/\nKkpkYei6p36y3I3yRUSFUbO9+rc9x2YkpWscXCzXrcJwo+2j+OWStV7iBnts1ZV/\nFMloe6orSpeAp4wB2U54TNjV8tSp8x17zb7Bu3eoOlMH1gb8Yu+I3ACCfwKBgQCg\nO1EuETgisWQYtS12HIAzqdGdvZ8oFA13GLrSEpK+vniMCkzxJi/Xj8KJ1BIJ1a0A\nncSlEQrz7R45BjXiidXPC86QlCgAi+gIE2xLyoirW3QRyxHpNu+LndqfeJxmiFYU\nfQbkLI1jfa9oAvnV2ZM+88xx+DkJlU55VbyW3wEfRQKBgQChWx4pbPp6xtX0CGZK\ncvG/YTpNOhdzOmoCSuHgagApVZU2sY+JWNt9YVJ9QKpjwY9rWwP6FWeVwNHd3J1X\nQQlTdsOPi/uR6e98mcaEpJNPe2WwKTR5iHvIODG4/szHU7pcd/cGgoTkm9pgoqRJ\nuA0OgBXek+IeRHbqRWYEAZDAmA==\n-----END PRIVATE KEY-----\n",
        public_pem: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk3DccqL+9p9stxRJU9ps\n2auyx+M2XHAdfl/veQu5BvIS9I7AX0NNQ5yaJgk/Tc6rVrEVMgEW/ifsdhbOCEnP\ne7zSHiuR/5Wb5DewnEYKsQG+Wale1/UO7TJxkT8lsr4SGytC+yvRcziEuv49MFGw\nUCTMk2R+J+iVR1iNrleh4b3Jt9aXZDh8WcgKPAYqkNrUDGbVg3QEVJR94SkIlsZM\nWbIOYftCEmen81QMm5WEsefHJ7QJacJVJ13ONFjimZFSIzUusGtgm3Qi/XcCZ6fH\nx3hLOe75N2akl80DLuyhiyKQrd/FPV81Fi24osf+yI/Lhm5egeBsub4sUPE1OW1/\nGwIDAQAB\n-----END PUBLIC KEY-----\n",
        n: "k3DccqL-9p9stxRJU9ps2auyx-M2XHAdfl_veQu5BvIS9I7AX0NNQ5yaJgk_Tc6rVrEVMgEW_ifsdhbOCEnPe7zSHiuR_5Wb5DewnEYKsQG-Wale1_UO7TJxkT8lsr4SGytC-yvRcziEuv49MFGwUCTMk2R-J-iVR1iNrleh4b3Jt9aXZDh8WcgKPAYqkNrUDGbVg3QEVJR94SkIlsZMWbIOYftCEmen81QMm5WEsefHJ7QJacJVJ13ONFjimZFSIzUusGtgm3Qi_XcCZ6fHx3hLOe75N2akl80DLuyhiyKQrd_FPV81Fi24osf-yI_Lhm5egeBsub4sUPE1OW1_Gw",
        e: "AQAB",
    },
];

/// The built-in pair whose public PEM equals `pem` (ignoring surrounding whitespace).
pub fn by_public_pem(pem: &str) -> Option<&'static BuiltinKeyPair> {
    KEYPAIRS.iter().find(|k| k.public_pem.trim() == pem.trim())
}

/// The built-in pair whose private PEM equals `pem` (ignoring surrounding whitespace).
pub fn by_private_pem(pem: &str) -> Option<&'static BuiltinKeyPair> {
    KEYPAIRS.iter().find(|k| k.private_pem.trim() == pem.trim())
}
