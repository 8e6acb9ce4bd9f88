package events

import "testing"

func BenchmarkMarshal(b *testing.B) {
	e := sample()
	e.Data = make([]byte, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Marshal(&e)
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	e := sample()
	e.Data = make([]byte, 256)
	buf := Marshal(&e)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		if _, err := Unmarshal(buf); err != nil {
			b.Fatal(err)
		}
	}
}
