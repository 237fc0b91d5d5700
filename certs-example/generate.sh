#!/bin/sh
# Regenerates the example network in certs-example/ with the godwit tool alone: a network CA,
# two RILO hubs and four national contact points in two regions, a shared channel key, and a
# godwitd.toml for each node. EXAMPLE KEYS ONLY — never use them for anything real.
#
#   sh certs-example/generate.sh [OUT]       # from the repository root; OUT defaults to certs-example
#   GODWIT=path/to/godwit sh certs-example/generate.sh my-network   # elsewhere, with a built godwit
set -eu
OUT=${1:-certs-example}
GODWIT=${GODWIT:-"cargo run -q --release --bin godwit --"}
CA="$OUT/ca"

rm -rf "$CA" "$OUT/alerts.key"
for n in hub-esa hub-ap ke ug vn th; do rm -rf "$OUT/$n"; done
$GODWIT ca init --dir "$CA" --name "Godwit Example Network CA (EXAMPLE ONLY)" >/dev/null
cp "$CA/ca.pem" "$OUT/ca.pem"
$GODWIT channel-key --out "$OUT/alerts.key" >/dev/null

# name  administration                         country region role   port
NODES="hub-esa|RILO Eastern and Southern Africa|KE|ESA|hub|7401
hub-ap|RILO Asia-Pacific|TH|AP|hub|7402
ke|Kenya Revenue Authority|KE|ESA|member|7411
ug|Uganda Revenue Authority|UG|ESA|member|7412
vn|Viet Nam Customs|VN|AP|member|7413
th|Thai Customs Department|TH|AP|member|7414"

id_of() { grep "^$1 " "$OUT/ids" | cut -d' ' -f2; }
: > "$OUT/ids"
echo "$NODES" | while IFS='|' read -r name admin country region role port; do
    mkdir -p "$OUT/$name"
    id=$($GODWIT init --data-dir "$OUT/$name" | sed -n 's/^NodeId //p')
    # The node makes its own encryption key in its data directory on first start.
    rm -f "$OUT/$name/encryption.key"
    $GODWIT ca issue --dir "$CA" --node-id "$id" --administration "$admin" --country "$country" \
        --region "$region" --role "$role" --days 730 --out "$OUT/$name/node.pem" >/dev/null
    echo "$name $id" >> "$OUT/ids"
done

all=$(cut -d' ' -f2 "$OUT/ids" | sed 's/.*/"&"/' | paste -sd, - | sed 's/,/, /g')
echo "$NODES" | while IFS='|' read -r name admin country region role port; do
    cp "$OUT/alerts.key" "$OUT/$name/alerts.key"
    chmod 600 "$OUT/$name/alerts.key"
    {
        echo "# $admin ($country, $region, $role). Example configuration: from the repository root,"
        echo "#   godwitd run --config $OUT/$name/godwitd.toml"
        echo "[node]"
        echo "data_dir = \"$OUT/$name/data\""
        echo "listen = \"127.0.0.1:$port\""
        echo "identity_key = \"../identity.key\""
        echo "admin_group = \"\""
        echo
        echo "[tls]"
        echo "ca = \"$OUT/ca.pem\""
        echo "certificate = \"$OUT/$name/node.pem\""
        echo
        echo "[[channels]]"
        echo "id = \"4747474747474747474747474747474747474747474747474747474747474747\""
        echo "name = \"RILO alerts\""
        echo "members = [$all]"
        echo "key_file = \"../alerts.key\""
        case "$name" in
            hub-esa)
                printf '\n[hub]\nserves = ["%s", "%s"]\n' "$(id_of ke)" "$(id_of ug)" ;;
            hub-ap)
                printf '\n[hub]\nserves = ["%s", "%s"]\n' "$(id_of vn)" "$(id_of th)"
                printf '\n[[peers]]\nnode_id = "%s"\naddress = "127.0.0.1:7401"\n' "$(id_of hub-esa)" ;;
            ke|ug)
                printf '\n[[peers]]\nnode_id = "%s"\naddress = "127.0.0.1:7401"\n' "$(id_of hub-esa)" ;;
            vn|th)
                printf '\n[[peers]]\nnode_id = "%s"\naddress = "127.0.0.1:7402"\n' "$(id_of hub-ap)" ;;
        esac
    } > "$OUT/$name/godwitd.toml"
done
# The CA's private key and state stay out of the example (and out of git).
rm -rf "$CA" "$OUT/alerts.key" "$OUT/ids"
echo "example network written to $OUT: ca.pem and hub-esa hub-ap ke ug vn th"
