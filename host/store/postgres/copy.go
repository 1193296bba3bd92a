package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/connhost/connhost/host/store/sqlstore"
)

// uniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const uniqueViolation = "23505"

// copySignature opens a COPY binary stream: the signature, no flags, no
// header extension.
const copySignature = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// copyRows is sqlstore's Dialect.CopyRows: one COPY … FROM STDIN in the
// binary format on the pgx connection under database/sql's, a unique
// violation reported as sqlstore.ErrCopyConflict. It writes the binary
// tuples itself (see encodeCopy), which spares pgx's describe round trip
// and per-value encoding plans.
func copyRows(ctx context.Context, conn any, table string, columns []string, rows [][]any) error {
	c, ok := conn.(*stdlib.Conn)
	if !ok {
		return fmt.Errorf("postgres: copy: unexpected driver connection %T", conn)
	}
	data, err := encodeCopy(rows, len(columns))
	if err != nil {
		return err
	}
	cols := make([]string, len(columns))
	for i, col := range columns {
		cols[i] = pgx.Identifier{col}.Sanitize()
	}
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
	tag, err := c.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), sql)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == uniqueViolation {
		return fmt.Errorf("%w: %s", sqlstore.ErrCopyConflict, pe.ConstraintName)
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(len(rows)) {
		return fmt.Errorf("postgres: copy into %s: %d of %d rows", table, tag.RowsAffected(), len(rows))
	}
	return nil
}

// encodeCopy encodes rows of n values as a COPY binary stream. A value is
// an int64 (bigint: 8 bytes, big-endian) or a string or []byte (text and
// json, whose binary form is their text); nil is NULL.
func encodeCopy(rows [][]any, n int) ([]byte, error) {
	size := len(copySignature) + 2
	for _, row := range rows {
		size += 2 + 4*n
		for _, v := range row {
			switch v := v.(type) {
			case int64:
				size += 8
			case string:
				size += len(v)
			case []byte:
				size += len(v)
			}
		}
	}
	b := make([]byte, 0, size)
	b = append(b, copySignature...)
	for i, row := range rows {
		if len(row) != n {
			return nil, fmt.Errorf("postgres: copy: row %d has %d values, want %d", i, len(row), n)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		for _, v := range row {
			switch v := v.(type) {
			case nil:
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			case int64:
				b = binary.BigEndian.AppendUint32(b, 8)
				b = binary.BigEndian.AppendUint64(b, uint64(v))
			case string:
				b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
				b = append(b, v...)
			case []byte:
				if v == nil {
					b = binary.BigEndian.AppendUint32(b, 0xffffffff)
					continue
				}
				b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
				b = append(b, v...)
			default:
				return nil, fmt.Errorf("postgres: copy: row %d: unsupported value type %T", i, v)
			}
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff), nil
}
