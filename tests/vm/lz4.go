package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// lz4LegacyMagic starts an LZ4 "legacy frame", the format the kernel's
// CONFIG_KERNEL_LZ4 payload uses: the magic, then blocks, each a 4-byte
// little-endian compressed size followed by an LZ4 block of at most 8 MiB
// of output. The kernel build appends the 4-byte decompressed size after
// the last block, so trailing bytes that cannot be a block end the stream.
const lz4LegacyMagic = 0x184C2102

// lz4LegacyMaxBlock bounds one block's output (the legacy format's limit).
const lz4LegacyMaxBlock = 8 << 20

// unlz4Legacy decompresses a legacy LZ4 frame. limit bounds the total
// output so a corrupt input cannot take unbounded memory.
func unlz4Legacy(in []byte, limit int) ([]byte, error) {
	if len(in) < 4 || binary.LittleEndian.Uint32(in) != lz4LegacyMagic {
		return nil, errors.New("lz4: not a legacy frame")
	}
	in = in[4:]
	var out []byte
	for len(in) >= 4 {
		size := int(binary.LittleEndian.Uint32(in))
		if size == lz4LegacyMagic { // concatenated frames
			in = in[4:]
			continue
		}
		if size == 0 || size > len(in)-4 {
			break // the appended decompressed size, or padding
		}
		var err error
		out, err = lz4Block(out, in[4:4+size], limit)
		if err != nil {
			return nil, err
		}
		in = in[4+size:]
	}
	if len(out) == 0 {
		return nil, errors.New("lz4: no data")
	}
	return out, nil
}

// lz4Block appends the decompression of one LZ4 block to out.
func lz4Block(out, src []byte, limit int) ([]byte, error) {
	start := len(out)
	i := 0
	readLen := func(n int) (int, error) {
		if n != 15 {
			return n, nil
		}
		for {
			if i >= len(src) {
				return 0, errors.New("lz4: truncated length")
			}
			b := src[i]
			i++
			n += int(b)
			if b != 255 {
				return n, nil
			}
		}
	}
	for i < len(src) {
		token := src[i]
		i++
		lit, err := readLen(int(token >> 4))
		if err != nil {
			return nil, err
		}
		if lit > len(src)-i || len(out)+lit > limit {
			return nil, fmt.Errorf("lz4: literal run of %d bytes out of bounds", lit)
		}
		out = append(out, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			break // the last sequence has literals only
		}
		if i+2 > len(src) {
			return nil, errors.New("lz4: truncated offset")
		}
		off := int(binary.LittleEndian.Uint16(src[i:]))
		i += 2
		ml, err := readLen(int(token & 15))
		if err != nil {
			return nil, err
		}
		ml += 4
		if off == 0 || off > len(out) {
			return nil, fmt.Errorf("lz4: bad match offset %d", off)
		}
		if len(out)+ml > limit || len(out)-start+ml > lz4LegacyMaxBlock {
			return nil, errors.New("lz4: output too large")
		}
		// Byte by byte: a match may overlap the bytes it produces.
		p := len(out) - off
		for k := 0; k < ml; k++ {
			out = append(out, out[p+k])
		}
	}
	return out, nil
}
