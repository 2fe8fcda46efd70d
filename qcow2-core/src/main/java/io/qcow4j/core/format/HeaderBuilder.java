package io.qcow4j.core.format;

import java.util.ArrayList;
import java.util.List;

/**
 * The fields of a header being made or changed, for the places that set several at once
 * (create, amend, snapshot apply): {@link Header#toBuilder}, set what changes, {@link #build}.
 * Defaults are those of a new header: refcount order 4, the rest zero or absent.
 */
public final class HeaderBuilder {
    int version;
    long backingFileOffset;
    int backingFileSize;
    int clusterBits;
    long size;
    int cryptMethod;
    int l1Size;
    long l1TableOffset;
    long refcountTableOffset;
    int refcountTableClusters;
    int nbSnapshots;
    long snapshotsOffset;
    long incompatibleFeatures;
    long compatibleFeatures;
    long autoclearFeatures;
    int refcountOrder = 4;
    int headerLength;
    int compressionType;
    byte[] unknownFields = new byte[0];
    String backingFile;
    final List<HeaderExtension> extensions = new ArrayList<>();

    HeaderBuilder() {
    }

    HeaderBuilder(Header h) {
        version = h.version();
        backingFileOffset = h.backingFileOffset();
        backingFileSize = h.backingFileSize();
        clusterBits = h.clusterBits();
        size = h.size();
        cryptMethod = h.cryptMethod();
        l1Size = h.l1Size();
        l1TableOffset = h.l1TableOffset();
        refcountTableOffset = h.refcountTableOffset();
        refcountTableClusters = h.refcountTableClusters();
        nbSnapshots = h.nbSnapshots();
        snapshotsOffset = h.snapshotsOffset();
        incompatibleFeatures = h.incompatibleFeatures();
        compatibleFeatures = h.compatibleFeatures();
        autoclearFeatures = h.autoclearFeatures();
        refcountOrder = h.refcountOrder();
        headerLength = h.headerLength();
        compressionType = h.compressionType();
        unknownFields = h.unknownFields();
        backingFile = h.backingFile();
        extensions.addAll(h.extensions());
    }

    public HeaderBuilder version(int v) {
        version = v;
        return this;
    }

    public HeaderBuilder clusterBits(int v) {
        clusterBits = v;
        return this;
    }

    public HeaderBuilder size(long v) {
        size = v;
        return this;
    }

    public HeaderBuilder cryptMethod(int v) {
        cryptMethod = v;
        return this;
    }

    public HeaderBuilder l1Size(int v) {
        l1Size = v;
        return this;
    }

    public HeaderBuilder l1TableOffset(long v) {
        l1TableOffset = v;
        return this;
    }

    public HeaderBuilder refcountTableOffset(long v) {
        refcountTableOffset = v;
        return this;
    }

    public HeaderBuilder refcountTableClusters(int v) {
        refcountTableClusters = v;
        return this;
    }

    public HeaderBuilder nbSnapshots(int v) {
        nbSnapshots = v;
        return this;
    }

    public HeaderBuilder snapshotsOffset(long v) {
        snapshotsOffset = v;
        return this;
    }

    public HeaderBuilder incompatibleFeatures(long v) {
        incompatibleFeatures = v;
        return this;
    }

    public HeaderBuilder compatibleFeatures(long v) {
        compatibleFeatures = v;
        return this;
    }

    public HeaderBuilder autoclearFeatures(long v) {
        autoclearFeatures = v;
        return this;
    }

    public HeaderBuilder refcountOrder(int v) {
        refcountOrder = v;
        return this;
    }

    public HeaderBuilder compressionType(int v) {
        compressionType = v;
        return this;
    }

    public HeaderBuilder backingFile(String v) {
        backingFile = v;
        return this;
    }

    /** Header bytes past the fields we know (kept verbatim); copied. */
    public HeaderBuilder unknownFields(byte[] v) {
        unknownFields = v.clone();
        return this;
    }

    /** Extension {@code type} now holds {@code data}, or is removed if {@code data} is null. */
    public HeaderBuilder extension(int type, byte[] data) {
        extensions.removeIf(e -> e.type() == type);
        if (data != null) {
            extensions.add(new HeaderExtension(type, data));
        }
        return this;
    }

    public Header build() {
        return new Header(this);
    }
}
