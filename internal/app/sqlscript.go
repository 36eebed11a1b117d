package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// writeSQLScript writes a psql script that runs exactly the statements an
// audit at now would run, so on-call can confirm a finding by hand and the
// benchmark can time raw SQL against tenantdrift. The arguments become SQL
// literals in EXECUTE; they come from the configuration and the clock, and
// the script is only printed, never executed by tenantdrift.
func writeSQLScript(ctx context.Context, w io.Writer, reg *tenant.Registry, instances []check.Instance, now time.Time, timeZone string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "-- tenantdrift audit as SQL, for psql; generated for %s\n", now.UTC().Format(time.RFC3339))
	// The session settings tenantdrift's own connections use.
	fmt.Fprintf(&b, "SET standard_conforming_strings = on;\nSET TimeZone = %s;\nSET jit = off;\n", literal(timeZone))
	body, args := reg.Query("SELECT count(*) AS tenants FROM registry_tenants", nil)
	if err := writeStatement(ctx, &b, "tenants", body, args); err != nil {
		return err
	}
	for _, inst := range instances {
		st, ok := inst.Check.(check.Statementer)
		if !ok {
			fmt.Fprintf(&b, "\n-- %s is not a single SQL statement\n", inst.Name)
			continue
		}
		q, a := st.Statement(now)
		body, args := reg.Query(q, a)
		if err := writeStatement(ctx, &b, inst.Name, body, args); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeStatement(ctx context.Context, b *strings.Builder, name, sql string, args pgx.NamedArgs) error {
	positional, values, err := args.RewriteQuery(ctx, nil, sql, nil)
	if err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	lits := make([]string, len(values))
	for i, v := range values {
		if lits[i], err = literalOf(v); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
	}
	fmt.Fprintf(b, "\n-- %s\nPREPARE %s AS\n%s;\n", name, name, strings.TrimSpace(positional))
	if len(lits) > 0 {
		fmt.Fprintf(b, "EXECUTE %s(%s);\n", name, strings.Join(lits, ", "))
	} else {
		fmt.Fprintf(b, "EXECUTE %s;\n", name)
	}
	fmt.Fprintf(b, "DEALLOCATE %s;\n", name)
	return nil
}

// literal quotes s as a standard-conforming SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func literalOf(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return literal(x), nil
	case time.Time:
		return literal(x.UTC().Format(time.RFC3339Nano)), nil
	case []string:
		elems := make([]string, len(x))
		for i, e := range x {
			elems[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e) + `"`
		}
		return literal("{" + strings.Join(elems, ",") + "}"), nil
	case int:
		return fmt.Sprint(x), nil
	case nil:
		return "NULL", nil
	}
	return "", fmt.Errorf("cannot render argument of type %T", v)
}
