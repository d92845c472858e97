import CCHOLMOD
import Testing
@testable import MixedModels

/// Every CHOLMOD object is owned by one Swift object that frees it in `deinit`: after a
/// model and its fit are gone, CHOLMOD's own allocation counter is back to zero.
@Suite("CHOLMOD object lifetimes")
struct CholmodLifetimeTests {
    @Test("a fit frees every CHOLMOD object it made", arguments: ["sleepstudy_reml", "penicillin_ml", "machines_slopes_reml"])
    func noLeakedObjects(_ name: String) throws {
        var common: CholmodCommon?
        do {
            let (model, reference) = try Fixtures.model(for: name)
            common = model.common
            _ = try model.fit(criterion: reference.criterion)
            #expect(common!.pointer.pointee.malloc_count > 0)
        }
        let survivor = try #require(common)
        cholmod_free_work(survivor.pointer)
        #expect(survivor.pointer.pointee.malloc_count == 0)
        #expect(survivor.pointer.pointee.memory_inuse == 0)
    }
}
